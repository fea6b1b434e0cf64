#!/usr/bin/python3
"""Side-by-side benchmark: seqrun vs ONNX Runtime vs PyTorch on the GPT-style decoder workloads.

For each workload (workloads.py: a = d256/4 heads/2 layers/seq 1024, b = the same at seq 4096, c = d768/12
heads/2 layers/seq 512) it
  1. exports the model if build/bench/models/<w> is missing (export_workloads.py),
  2. converts model.onnx -> model.seqrun with seqrun-export (falls back to running the .onnx directly),
  3. runs, each round, `seqrun bench`, ONNX Runtime (ort/run_ort.js) and PyTorch (run_torch.py) one after
     another as separate processes on the same input, rotating the order every round,
  4. checks that every runtime's output agrees with PyTorch's reference output saved at export time:
     max rel err = max |out - ref| / max |ref|,
  5. prints the machine, the exact command and a Markdown table: the median over rounds of each process's
     median latency, the ratios, each process's peak RSS (max over rounds) and the errors.

  tools/bench/compare.py                                   # a, b, c; 5 rounds x 5 timed runs each
  tools/bench/compare.py --workloads a --seq 128 --rounds 2 --repeat 2   # quick smoke test
Run tools/bench/setup.sh once first (ONNX Runtime for node, OpenBLAS for PyTorch). Every runtime gets
--threads (default 2) intra-op threads.
"""
import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from workloads import WORKLOADS, workload_dir_name  # noqa: E402

RUNTIMES = ("seqrun", "ort", "torch")
LABELS = {"seqrun": "seqrun", "ort": "ORT", "torch": "PyTorch"}


def machine_description():
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs (nproc), {cpu}, {platform.system()} {platform.release()}"


def package_installed(name):
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True)
    except OSError:
        return False
    return "install ok installed" in out.stdout


def median(values):
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 == 1 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def run_json(command, timeout_s):
    """Runs one benchmark process; returns (parsed JSON stdout, None) or (None, error text)."""
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, cwd=REPO_ROOT)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout_s} s"
    except OSError as e:
        return None, str(e)
    if proc.returncode != 0:
        lines = (proc.stderr.strip() or proc.stdout.strip() or f"exit code {proc.returncode}").splitlines()
        return None, lines[-1]
    try:
        return json.loads(proc.stdout), None
    except json.JSONDecodeError as e:
        return None, f"output is not JSON ({e})"


def ensure_model(name, seq, models_dir):
    folder = os.path.join(models_dir, workload_dir_name(name, seq))
    command = [sys.executable, os.path.join(HERE, "export_workloads.py"), "--workloads", name, "--out", models_dir]
    if seq is not None:
        command += ["--seq", str(seq)]
    subprocess.run(command, check=True)
    return folder


def ensure_seqrun_model(folder, export_tool):
    """model.onnx -> model.seqrun (redone when the .onnx is newer); returns the file seqrun should run."""
    onnx_path = os.path.join(folder, "model.onnx")
    seqrun_path = os.path.join(folder, "model.seqrun")
    if os.path.exists(seqrun_path) and os.path.getmtime(seqrun_path) >= os.path.getmtime(onnx_path):
        return seqrun_path
    proc = subprocess.run([export_tool, "onnx", onnx_path, "-o", seqrun_path], capture_output=True, text=True)
    if proc.returncode == 0:
        return seqrun_path
    print(f"note: seqrun-export failed ({proc.stderr.strip()}); seqrun runs the .onnx directly")
    return onnx_path


def runtime_command(runtime, args, folder, seqrun_model, out_dir):
    input_spec = "input_ids=" + os.path.join(folder, "input_ids.npy")
    common = ["--warmup", str(args.warmup), "--repeat", str(args.repeat), "--threads", str(args.threads),
              "--output-dir", out_dir]
    if runtime == "seqrun":
        return [args.seqrun, "bench", seqrun_model, "--input", input_spec, f"-O{args.opt_level}", "--json"] + common
    if runtime == "ort":
        return ["node", os.path.join(HERE, "ort", "run_ort.js"), os.path.join(folder, "model.onnx"), "--input",
                input_spec] + common
    return [sys.executable, os.path.join(HERE, "run_torch.py"), folder, "--input", input_spec] + common


def max_rel_err(output_file, reference):
    if not os.path.exists(output_file):
        return None
    out = np.load(output_file).astype(np.float64)
    if out.shape != reference.shape:
        return float("inf")
    scale = float(np.max(np.abs(reference))) or 1.0
    return float(np.max(np.abs(out - reference))) / scale


def fmt_ms(v):
    return "failed" if v is None else f"{v:.2f}"


def fmt_ratio(a, b):
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def fmt_err(v):
    return "-" if v is None else f"{v:.1e}"


def bench_workload(name, args):
    folder = ensure_model(name, args.seq, args.models)
    seqrun_model = ensure_seqrun_model(folder, args.export) if "seqrun" in args.runtimes else None
    reference = np.load(os.path.join(folder, "reference_logits.npy")).astype(np.float64)
    runs_dir = os.path.join(args.out, workload_dir_name(name, args.seq))
    results = {r: [] for r in args.runtimes}
    errors = {}
    for round_index in range(args.rounds):
        k = round_index % len(args.runtimes)
        order = args.runtimes[k:] + args.runtimes[:k]
        for runtime in order:
            if runtime in errors:
                continue
            out_dir = os.path.join(runs_dir, runtime)
            command = runtime_command(runtime, args, folder, seqrun_model, out_dir)
            if round_index == 0:
                print("  " + " ".join(shlex.quote(c) for c in command))
            result, error = run_json(command, args.timeout)
            if error is not None:
                errors[runtime] = error
                print(f"  {LABELS[runtime]} failed: {error}")
                continue
            results[runtime].append(result)
            print(f"  round {round_index + 1}/{args.rounds} {LABELS[runtime]}: median {result['median_ms']:.2f} ms")
    summary = {"workload": workload_dir_name(name, args.seq), "errors": errors}
    for runtime in args.runtimes:
        runs = results[runtime]
        if not runs or runtime in errors:
            summary[runtime] = None
            continue
        entry = {
            "median_ms": median([r["median_ms"] for r in runs]),
            "min_ms": min(r["min_ms"] for r in runs),
            "round_medians_ms": [r["median_ms"] for r in runs],
            "load_ms": median([r["load_ms"] for r in runs]),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
            "max_rel_err": max_rel_err(os.path.join(runs_dir, runtime, "logits.npy"), reference),
        }
        for key in ("arena_bytes", "arena_lower_bound_bytes"):
            if key in runs[-1]:
                entry[key] = runs[-1][key]
        summary[runtime] = entry
    return summary


def print_table(summaries, runtimes):
    def get(s, runtime, key):
        return None if s.get(runtime) is None else s[runtime].get(key)

    header = ["workload"] + [f"{LABELS[r]} ms" for r in runtimes]
    if "seqrun" in runtimes:
        header += [f"seqrun/{LABELS[r]}" for r in runtimes if r != "seqrun"]
    header += ["peak RSS MiB (" + " / ".join(LABELS[r] for r in runtimes) + ")",
               "max rel err vs PyTorch ref (" + " / ".join(LABELS[r] for r in runtimes) + ")",
               "load ms (" + " / ".join(LABELS[r] for r in runtimes) + ")"]
    if "seqrun" in runtimes:
        header.append("seqrun arena MiB (x lower bound)")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for s in summaries:
        row = [s["workload"]] + [fmt_ms(get(s, r, "median_ms")) for r in runtimes]
        if "seqrun" in runtimes:
            row += [fmt_ratio(get(s, "seqrun", "median_ms"), get(s, r, "median_ms")) for r in runtimes if r != "seqrun"]
        row.append(" / ".join("-" if get(s, r, "peak_rss_mib") is None else f"{get(s, r, 'peak_rss_mib'):.0f}"
                              for r in runtimes))
        row.append(" / ".join(fmt_err(get(s, r, "max_rel_err")) for r in runtimes))
        row.append(" / ".join(fmt_ms(get(s, r, "load_ms")) for r in runtimes))
        if "seqrun" in runtimes:
            arena = get(s, "seqrun", "arena_bytes")
            bound = get(s, "seqrun", "arena_lower_bound_bytes")
            row.append("-" if arena is None else f"{arena / 2**20:.1f}" + (f" ({arena / bound:.2f}x)" if bound else ""))
        print("| " + " | ".join(row) + " |")


def print_goals(summaries):
    """The issue's goals: seqrun at most 0.8x ONNX Runtime's median and below PyTorch's."""
    for s in summaries:
        seq_ms = None if s.get("seqrun") is None else s["seqrun"]["median_ms"]
        if seq_ms is None:
            continue
        notes = []
        if s.get("ort") is not None:
            ratio = seq_ms / s["ort"]["median_ms"]
            notes.append(f"seqrun/ORT {ratio:.2f} ({'met' if ratio <= 0.8 else 'NOT met'}: goal <= 0.8)")
        if s.get("torch") is not None:
            ratio = seq_ms / s["torch"]["median_ms"]
            notes.append(f"seqrun/PyTorch {ratio:.2f} ({'met' if ratio < 1.0 else 'NOT met'}: goal < 1)")
        if "arena_bytes" in s["seqrun"] and s["seqrun"].get("arena_lower_bound_bytes"):
            ratio = s["seqrun"]["arena_bytes"] / s["seqrun"]["arena_lower_bound_bytes"]
            notes.append(f"arena/lower bound {ratio:.2f} ({'met' if ratio <= 1.1 else 'NOT met'}: goal <= 1.1)")
        if notes:
            print(f"- {s['workload']}: " + "; ".join(notes))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default="a,b,c", help="comma-separated subset of " + ",".join(WORKLOADS))
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help="comma-separated subset of seqrun,ort,torch")
    parser.add_argument("--rounds", type=int, default=5, help="processes per runtime (alternating order)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs inside each process")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs inside each process")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for every runtime")
    parser.add_argument("--opt-level", type=int, default=1, choices=(0, 1), help="seqrun's -O level")
    parser.add_argument("--seq", type=int, default=None, help="override the sequence length (smoke tests)")
    parser.add_argument("--models", default=os.path.join(REPO_ROOT, "build", "bench", "models"))
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "build", "bench", "runs"),
                        help="where each runtime writes its outputs")
    parser.add_argument("--seqrun", default=os.path.join(REPO_ROOT, "build", "tools", "seqrun"))
    parser.add_argument("--export", default=os.path.join(REPO_ROOT, "build", "tools", "seqrun-export"))
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per benchmark process")
    parser.add_argument("--json", default=None, help="also write the summaries to this JSON file")
    args = parser.parse_args()

    names = [w for w in args.workloads.split(",") if w]
    for w in names:
        if w not in WORKLOADS:
            parser.error(f"unknown workload '{w}' (known: {', '.join(WORKLOADS)})")
    args.runtimes = [r for r in args.runtimes.split(",") if r]
    for r in args.runtimes:
        if r not in RUNTIMES:
            parser.error(f"unknown runtime '{r}' (known: {', '.join(RUNTIMES)})")
    if args.rounds < 1 or args.repeat < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("--rounds, --repeat and --threads must be >= 1, --warmup >= 0")
    if "seqrun" in args.runtimes:
        for tool in (args.seqrun, args.export):
            if not os.access(tool, os.X_OK):
                parser.error(f"{tool} not found: build it first (ninja -C build seqrun seqrun-export)")
    if "ort" in args.runtimes and not os.path.exists(os.path.join(HERE, "ort", "node_modules", "onnxruntime-node")):
        parser.error("onnxruntime-node is not installed: run tools/bench/setup.sh")

    print(f"command: {' '.join(shlex.quote(a) for a in sys.argv)}")
    print(f"machine: {machine_description()}")
    if "torch" in args.runtimes and not package_installed("libopenblas0-openmp"):
        print("warning: libopenblas0-openmp is not installed: PyTorch runs on the reference BLAS "
              "(run tools/bench/setup.sh)")
    print(f"settings: {args.rounds} rounds x (warmup {args.warmup} + {args.repeat} timed runs), "
          f"{args.threads} threads, seqrun -O{args.opt_level}")

    summaries = []
    start = time.time()
    for name in names:
        print(f"workload {name}: {WORKLOADS[name] if args.seq is None else dict(WORKLOADS[name], seq=args.seq)}")
        summaries.append(bench_workload(name, args))
    print(f"\n(took {time.time() - start:.0f} s; ms = median over rounds of each process's median; "
          "peak RSS = max over rounds, whole process; load = median over rounds)\n")
    print_table(summaries, args.runtimes)
    print()
    print_goals(summaries)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": sys.argv, "machine": machine_description(), "summaries": summaries}, f, indent=2)
    return 1 if any(s["errors"] for s in summaries) else 0


if __name__ == "__main__":
    sys.exit(main())
