#!/usr/bin/env python3
"""Times a sequential selective scan in eager PyTorch on the GPU: the peer of seqrun-scan-bench.

The reference is the plain-PyTorch form of Mamba's selective scan (the one Mamba ships as its reference
next to its CUDA kernel): discretize everything up front (exp(delta * A) and delta * B * u as
[B, D, L, N] tensors), then one Python-level step per token (h = dA_t * h + dBu_t; y_t = h . C_t), then
the D skip and the SiLU(z) gate. Same shapes as tools/gpu/check.sh gives seqrun: one Mamba-130m layer,
batch 1, D = 1536, N = 16, 2k..8k tokens, f32. Times with CUDA events (median of --repeat runs after
--warmup), and prints one machine-readable line per shape:
    RESULT torch-scan seq=2048 ms=123.4
Runs on the device machine's python3 (PyTorch with CUDA); needs nothing from seqrun.
"""
import argparse
import statistics
import sys


def reference_scan(torch, u, delta, A, Bm, Cm, D, z, delta_bias):
    """y [B, D, L] of Mamba's selective scan, stepping through time one token at a time."""
    F = torch.nn.functional
    batch, dim, length = u.shape
    dt = F.softplus(delta + delta_bias[None, :, None])
    decay = torch.exp(torch.einsum("bdl,dn->bdln", dt, A))  # [B, D, L, N]
    drive = torch.einsum("bdl,bnl,bdl->bdln", dt, Bm, u)    # [B, D, L, N]
    h = u.new_zeros(batch, dim, A.shape[1])
    ys = []
    for t in range(length):
        h = decay[:, :, t] * h + drive[:, :, t]
        ys.append(torch.einsum("bdn,bn->bd", h, Cm[:, :, t]))
    y = torch.stack(ys, dim=2) + u * D[None, :, None]
    return y * F.silu(z)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--channels", type=int, default=1536)
    parser.add_argument("--state", type=int, default=16)
    parser.add_argument("--seqs", default="2048,4096,8192")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import torch  # imported here so --help works without torch

    if not torch.cuda.is_available():
        print("bench_scan.py: error: no CUDA device for PyTorch", file=sys.stderr)
        return 1
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}", flush=True)
    failed = 0
    for seq in [int(s) for s in args.seqs.split(",") if s]:
        try:
            gen = torch.Generator(device="cuda").manual_seed(seq)
            B, D, N, L = args.batch, args.channels, args.state, seq

            def uniform(shape, lo, hi):
                return torch.rand(shape, device="cuda", dtype=torch.float32, generator=gen) * (hi - lo) + lo

            inputs = (uniform((B, D, L), -1, 1), uniform((B, D, L), -3, 1), uniform((D, N), -2, -0.1),
                      uniform((B, N, L), -1, 1), uniform((B, N, L), -1, 1), uniform((D,), -1, 1),
                      uniform((B, D, L), -3, 3), uniform((D,), -1, 0))
            with torch.no_grad():
                for _ in range(args.warmup):
                    reference_scan(torch, *inputs)
                torch.cuda.synchronize()
                times = []
                for _ in range(args.repeat):
                    start = torch.cuda.Event(enable_timing=True)
                    end = torch.cuda.Event(enable_timing=True)
                    start.record()
                    reference_scan(torch, *inputs)
                    end.record()
                    torch.cuda.synchronize()
                    times.append(start.elapsed_time(end))
            ms = statistics.median(times)
            print(f"selective scan torch-reference f32 B={B} D={D} N={N} L={L}: median {ms:.2f} ms", flush=True)
            print(f"RESULT torch-scan seq={seq} ms={ms:.4f}", flush=True)
            del inputs
        except Exception as e:  # keep going: one failing shape should not hide the others
            print(f"FAIL torch-scan L={seq}: {e}", flush=True)
            print(f"RESULT torch-scan seq={seq} ms=nan", flush=True)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
