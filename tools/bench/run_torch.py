#!/usr/bin/python3
"""Times a benchmark workload in eager PyTorch (CPU) for seqrun's side-by-side benchmark.

Rebuilds the module of gpt_model.py from WORKLOAD_DIR/config.json and WORKLOAD_DIR/weights.pt (written by
export_workloads.py), runs warmup + timed runs under torch.inference_mode, prints one JSON object
{runtime, version, load_ms, min_ms, median_ms, mean_ms, max_ms, times_ms, peak_rss_mib, threads, ...} and
writes the last run's output as .npy. peak_rss_mib is getrusage's ru_maxrss of this process (which includes
the ~200 MiB that importing torch costs).

  /usr/bin/python3 tools/bench/run_torch.py build/bench/models/a [--input input_ids=FILE.npy]
      [--warmup 3] [--repeat 10] [--threads 2] [--output-dir DIR]

Run tools/bench/setup.sh once first: without OpenBLAS, Debian's torch 1.13 multiplies with the reference BLAS.
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
from gpt_model import build_model  # noqa: E402


def summarize(times_ms):
    s = sorted(times_ms)
    n = len(s)
    median = s[n // 2] if n % 2 == 1 else 0.5 * (s[n // 2 - 1] + s[n // 2])
    return dict(min_ms=s[0], median_ms=median, mean_ms=sum(s) / n, max_ms=s[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload_dir", help="a folder written by export_workloads.py")
    parser.add_argument("--input", default=None, help="input_ids=FILE.npy (default: WORKLOAD_DIR/input_ids.npy)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output-dir", default=None, help="write the last run's logits to DIR/logits.npy")
    args = parser.parse_args()
    if args.repeat < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("--repeat and --threads must be >= 1, --warmup >= 0")
    torch.set_num_threads(args.threads)

    input_file = os.path.join(args.workload_dir, "input_ids.npy")
    if args.input is not None:
        name, _, input_file = args.input.partition("=")
        if name != "input_ids" or not input_file:
            parser.error(f"--input '{args.input}': expected input_ids=FILE.npy")
    input_ids = torch.from_numpy(np.load(input_file))

    load_start = time.perf_counter()
    with open(os.path.join(args.workload_dir, "config.json")) as f:
        config = json.load(f)
    model = build_model(config)
    model.load_state_dict(torch.load(os.path.join(args.workload_dir, "weights.pt")))
    model.eval()
    load_ms = (time.perf_counter() - load_start) * 1e3

    times_ms = []
    with torch.inference_mode():
        for i in range(args.warmup + args.repeat):
            start = time.perf_counter()
            logits = model(input_ids)
            elapsed = (time.perf_counter() - start) * 1e3
            if i >= args.warmup:
                times_ms.append(elapsed)

    output_files = []
    if args.output_dir is not None:
        os.makedirs(args.output_dir, exist_ok=True)
        path = os.path.join(args.output_dir, "logits.npy")
        np.save(path, logits.numpy())
        output_files.append(path)
    result = dict(runtime="pytorch", version=torch.__version__, model=args.workload_dir, threads=args.threads,
                  warmup=args.warmup, repeat=args.repeat, load_ms=load_ms, **summarize(times_ms),
                  times_ms=times_ms, peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                  output_files=output_files)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
