#!/usr/bin/python3
"""Exports the benchmark workloads (GPT-style causal decoders, gpt_model.py) from PyTorch to ONNX opset 17.

For each workload it writes OUT/<name>/:
  model.onnx            torch.onnx.export, opset 17, input_ids int64 [1, seq] -> logits f32 [1, seq, vocab]
  config.json           the model's shape (run_torch.py rebuilds the module from it)
  weights.pt            the state_dict (so run_torch.py runs the very same weights)
  input_ids.npy         the benchmark input: token ids, fixed seed
  reference_logits.npy  PyTorch's eager output on that input (the agreement check compares against it)
Everything is seeded, so two exports of a workload are the same model. Files are generated on demand and
never committed (default OUT: build/bench/models).

  /usr/bin/python3 tools/bench/export_workloads.py                       # a, b, c
  /usr/bin/python3 tools/bench/export_workloads.py --workloads a --seq 128  # small smoke-test variant
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_model import build_model  # noqa: E402
from workloads import WORKLOADS, workload_config, workload_dir_name  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO_ROOT, "build", "bench", "models")
SEED = 1234
OPSET = 17


def export_workload(name, out_root, seq=None, force=False):
    """Exports one workload; returns its folder. Skips the work when the folder is complete."""
    config = workload_config(name, seq)
    folder = os.path.join(out_root, workload_dir_name(name, seq))
    files = ["model.onnx", "config.json", "weights.pt", "input_ids.npy", "reference_logits.npy"]
    if not force and all(os.path.exists(os.path.join(folder, f)) for f in files):
        print(f"{folder}: up to date")
        return folder
    os.makedirs(folder, exist_ok=True)
    start = time.time()

    torch.manual_seed(SEED)
    model = build_model(config).eval()
    rng = np.random.default_rng(SEED)
    input_ids = rng.integers(0, config["vocab"], size=(1, config["seq"]), dtype=np.int64)
    ids = torch.from_numpy(input_ids)
    with torch.no_grad():
        reference = model(ids).numpy()

    with torch.no_grad():
        torch.onnx.export(model, (ids,), os.path.join(folder, "model.onnx"), opset_version=OPSET,
                          input_names=["input_ids"], output_names=["logits"], do_constant_folding=True)
    torch.save(model.state_dict(), os.path.join(folder, "weights.pt"))
    np.save(os.path.join(folder, "input_ids.npy"), input_ids)
    np.save(os.path.join(folder, "reference_logits.npy"), reference.astype(np.float32))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(dict(config, workload=name, seed=SEED, opset=OPSET), f, indent=2)
    size_mb = os.path.getsize(os.path.join(folder, "model.onnx")) / 1e6
    print(f"{folder}: exported {name} {config} ({size_mb:.1f} MB, {time.time() - start:.1f} s)")
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default="a,b,c", help="comma-separated subset of " + ",".join(WORKLOADS))
    parser.add_argument("--seq", type=int, default=None, help="override the sequence length (smoke tests)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="re-export even when the files exist")
    args = parser.parse_args()
    names = [w for w in args.workloads.split(",") if w]
    for w in names:
        if w not in WORKLOADS:
            parser.error(f"unknown workload '{w}' (known: {', '.join(WORKLOADS)})")
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    for w in names:
        export_workload(w, args.out, args.seq, args.force)


if __name__ == "__main__":
    main()
