#!/usr/bin/python3
"""Times one Mamba workload in eager PyTorch (CPU) with the reference selective scan (mamba_torch.py's
selective_scan_ref: the sequential loop over the sequence) for tools/bench/mamba/compare_mamba.py.

  /usr/bin/python3 tools/bench/mamba/run_torch_mamba.py FOLDER --kind block|scan|model
      [--warmup 2] [--repeat 5] [--threads 2] [--output-dir DIR]

FOLDER is one written by export_mamba_block.py: block (config.json, weights.pt, hidden_states.npy), scan (the
eight input .npy files) or model (config.json, model.safetensors, input_ids.npy). Runs warmup + timed runs
under torch.inference_mode, prints one JSON object {runtime, version, load_ms, min_ms, median_ms, mean_ms,
max_ms, times_ms, peak_rss_mib, threads, ...} and writes the last run's output (output.npy / y.npy /
logits.npy) to --output-dir. Run tools/bench/setup.sh once first: without OpenBLAS, Debian's torch 1.13
multiplies with the reference BLAS.
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamba_torch import MambaForCausalLM, MambaMixer, selective_scan_ref  # noqa: E402

SCAN_INPUTS = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias"]


def summarize(times_ms):
    s = sorted(times_ms)
    n = len(s)
    median = s[n // 2] if n % 2 == 1 else 0.5 * (s[n // 2 - 1] + s[n // 2])
    return dict(min_ms=s[0], median_ms=median, mean_ms=sum(s) / n, max_ms=s[-1])


def read_safetensors(path):
    """name -> torch tensor (F32 only), from the layout export_mamba_block.py writes."""
    with open(path, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_len))
        data = f.read()
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] != "F32":
            raise SystemExit(f"{path}: {name} is {entry['dtype']}, this runner reads F32 only")
        begin, end = entry["data_offsets"]
        tensors[name] = torch.from_numpy(np.frombuffer(data[begin:end], dtype=np.float32).reshape(entry["shape"]).copy())
    return tensors


def load(folder, kind):
    """Returns (callable running the workload once, its input, output file name)."""
    if kind == "block":
        with open(os.path.join(folder, "config.json")) as f:
            cfg = json.load(f)
        block = MambaMixer(cfg["d_model"], cfg["d_state"], cfg["expand"], cfg["d_conv"], cfg["dt_rank"], scan="ref")
        block.load_state_dict(torch.load(os.path.join(folder, "weights.pt")))
        block.eval()
        hidden = torch.from_numpy(np.load(os.path.join(folder, "hidden_states.npy")))
        return (lambda: block(hidden)), "output.npy"
    if kind == "scan":
        inputs = [torch.from_numpy(np.load(os.path.join(folder, n + ".npy"))) for n in SCAN_INPUTS]
        return (lambda: selective_scan_ref(*inputs)), "y.npy"
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    model = MambaForCausalLM(cfg, scan="ref")
    model.load_state_dict(read_safetensors(os.path.join(folder, "model.safetensors")))
    model.eval()
    ids = torch.from_numpy(np.load(os.path.join(folder, "input_ids.npy")))
    return (lambda: model(ids)), "logits.npy"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--kind", required=True, choices=("block", "scan", "model"))
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output-dir", default=None)
    args = parser.parse_args()
    if args.repeat < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("--repeat and --threads must be >= 1, --warmup >= 0")
    torch.set_num_threads(args.threads)

    load_start = time.perf_counter()
    with torch.inference_mode():
        run, output_name = load(args.folder, args.kind)
    load_ms = (time.perf_counter() - load_start) * 1e3
    times_ms = []
    with torch.inference_mode():
        for i in range(args.warmup + args.repeat):
            start = time.perf_counter()
            out = run()
            elapsed = (time.perf_counter() - start) * 1e3
            if i >= args.warmup:
                times_ms.append(elapsed)
    output_files = []
    if args.output_dir is not None:
        os.makedirs(args.output_dir, exist_ok=True)
        path = os.path.join(args.output_dir, output_name)
        np.save(path, out.numpy())
        output_files.append(path)
    result = dict(runtime="pytorch", version=torch.__version__, model=args.folder, kind=args.kind,
                  threads=args.threads, warmup=args.warmup, repeat=args.repeat, load_ms=load_ms,
                  **summarize(times_ms), times_ms=times_ms,
                  peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, output_files=output_files)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
