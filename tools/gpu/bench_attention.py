#!/usr/bin/env python3
"""Times torch.nn.functional.scaled_dot_product_attention on the GPU: the peer of seqrun-attention-bench.

Same shapes as tools/gpu/check.sh gives seqrun: bf16, batch 4, 16 heads of 64, one sequence length per
run (1k..16k), causal and not. Times with CUDA events (median of --repeat runs after --warmup), and prints
one machine-readable line per shape:
    RESULT torch causal=1 seq=1024 ms=0.123 tflops=123.4 kernel=<backend>
Runs on the device machine's python3 (PyTorch with CUDA); needs nothing from seqrun.
"""
import argparse
import statistics
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--head-size", type=int, default=64)
    parser.add_argument("--seqs", default="1024,2048,4096,8192,16384")
    parser.add_argument("--causal", default="both", choices=["both", "1", "0"])
    parser.add_argument("--dtype", default="bf16", choices=["bf16", "f16", "f32"])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    import torch  # imported here so --help works without torch

    if not torch.cuda.is_available():
        print("bench_attention.py: error: no CUDA device for PyTorch", file=sys.stderr)
        return 1
    dtype = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[args.dtype]
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}", flush=True)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    failed = 0
    for seq in [int(s) for s in args.seqs.split(",") if s]:
        for causal in (True, False):
            if (args.causal == "1" and not causal) or (args.causal == "0" and causal):
                continue
            try:
                shape = (args.batch, args.heads, seq, args.head_size)
                gen = torch.Generator(device="cuda").manual_seed(seq)
                q, k, v = (torch.rand(shape, device="cuda", dtype=dtype, generator=gen) * 4 - 2 for _ in range(3))
                for _ in range(args.warmup):
                    sdpa(q, k, v, is_causal=causal)
                torch.cuda.synchronize()
                times = []
                for _ in range(args.repeat):
                    start = torch.cuda.Event(enable_timing=True)
                    end = torch.cuda.Event(enable_timing=True)
                    start.record()
                    sdpa(q, k, v, is_causal=causal)
                    end.record()
                    torch.cuda.synchronize()
                    times.append(start.elapsed_time(end))
                ms = statistics.median(times)
                flops = 4.0 * args.batch * args.heads * seq * seq * args.head_size * (0.5 if causal else 1.0)
                tflops = flops / (ms * 1e-3) / 1e12
                print(f"attention torch-sdpa {args.dtype} B={args.batch} H={args.heads} D={args.head_size} "
                      f"S={seq} causal={int(causal)}: median {ms:.3f} ms, {tflops:.1f} TFLOP/s", flush=True)
                print(f"RESULT torch causal={int(causal)} seq={seq} ms={ms:.4f} tflops={tflops:.2f} kernel=sdpa",
                      flush=True)
                del q, k, v
            except Exception as e:  # keep going: one failing shape should not hide the others
                print(f"FAIL torch S={seq} causal={int(causal)}: {e}", flush=True)
                print(f"RESULT torch causal={int(causal)} seq={seq} ms=nan tflops=nan kernel=-", flush=True)
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
