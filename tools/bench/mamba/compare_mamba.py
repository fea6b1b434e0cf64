#!/usr/bin/python3
"""Side-by-side Mamba benchmark: seqrun vs ONNX Runtime vs PyTorch (tools/bench/mamba/README.md).

Workloads (export_mamba_block.py writes them under build/bench/mamba/ on first use):
  block  the Mamba block (d_model 768, d_state 16, expand 2, d_conv 4, dt_rank 48), batch 1, seq 2048:
         seqrun runs block.onnx (its scan a scripted ONNX Loop, which fuse-ssm-scan turns into SelectiveScan),
         ONNX Runtime the same block.onnx (the Loop as it is), PyTorch the module with the reference scan.
  scan   the selective scan alone with the block's shapes (scan.onnx -> one SelectiveScan in seqrun); its
         GB/s = (u, delta, z, y [B, D, L] + B, C [B, N, L] + A [D, N] + D, delta_bias [D]) bytes / median
         time, against this machine's triad bandwidth (bench_memory_bandwidth.cpp, --threads threads).
  model  a Mamba-130M-shaped model (24 layers, d_model 768, vocab 50280, f32, random weights) from an
         HF-layout checkpoint (seqrun-export hf), 512-token prompt: ms and tokens/s. ONNX Runtime runs it
         only with --model-onnx (a ~520 MB export with 24 Loops), PyTorch with the reference scan.
Each round runs every runtime as its own process, the order rotating (like tools/bench/compare.py); the
table shows the median over rounds of each process's median, ratios, tokens/s, errors against PyTorch's
reference output and seqrun's arena. Goals are checked below the table.

  tools/bench/mamba/compare_mamba.py                          # everything, 5 rounds x 5 runs, 2 threads
  tools/bench/mamba/compare_mamba.py --workloads scan --runtimes seqrun
  tools/bench/mamba/compare_mamba.py --seq 256 --prompt 64 --layers 2 --vocab 1000 --rounds 1 --repeat 2 \\
      --warmup 1      # smoke test
Run tools/bench/setup.sh once first (ONNX Runtime for node, OpenBLAS for PyTorch).
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
BENCH_DIR = os.path.dirname(HERE)
REPO_ROOT = os.path.dirname(os.path.dirname(BENCH_DIR))
RUNTIMES = ("seqrun", "ort", "torch")
LABELS = {"seqrun": "seqrun", "ort": "ORT", "torch": "PyTorch"}
SCAN_INPUTS = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias"]
BLOCK = {"d_model": 768, "d_inner": 1536, "d_state": 16}
GOALS = {"torch_over_seqrun_block": 10.0, "ort_over_seqrun_block": 20.0, "scan_bandwidth_fraction": 0.5,
         "model_tokens_per_s": 370.0}


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


def median(values):
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 == 1 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def run_json(command, timeout_s, env=None):
    """Runs one process printing JSON; returns (parsed, None) or (None, error text)."""
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, cwd=REPO_ROOT, env=env)
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


def measure_bandwidth(args):
    """Builds bench_memory_bandwidth.cpp (when missing or older than its source) and runs it."""
    source = os.path.join(HERE, "bench_memory_bandwidth.cpp")
    binary = os.path.join(args.out, "bandwidth")
    if not os.path.exists(binary) or os.path.getmtime(binary) < os.path.getmtime(source):
        os.makedirs(args.out, exist_ok=True)
        subprocess.run(["g++", "-O3", "-march=native", "-fopenmp", source, "-o", binary], check=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OMP_PROC_BIND="close")
    result, error = run_json([binary, "--repeat", "20"], args.timeout, env)
    if error is not None:
        print(f"bandwidth benchmark failed: {error}")
    return result


def export(args, what, extra=()):
    command = [sys.executable, os.path.join(HERE, "export_mamba_block.py"), "--what", what, "--out", args.out,
               "--batch", "1", "--seq", str(args.seq), "--prompt", str(args.prompt), "--layers", str(args.layers),
               "--vocab", str(args.vocab)] + list(extra)
    subprocess.run(command, check=True)


def to_seqrun(args, source, target, kind):
    """source (.onnx or checkpoint folder) -> target .seqrun, redone when the source is newer."""
    stamp = source if kind == "onnx" else os.path.join(source, "model.safetensors")
    if os.path.exists(target) and os.path.getmtime(target) >= os.path.getmtime(stamp):
        return target
    proc = subprocess.run([args.export, kind, source, "-o", target], capture_output=True, text=True)
    if proc.returncode != 0:
        if kind == "onnx":
            print(f"note: seqrun-export failed ({proc.stderr.strip()}); seqrun runs the .onnx directly")
            return source
        raise SystemExit(f"seqrun-export hf {source} failed: {proc.stderr.strip()}")
    return target


def op_counts(args, model, inputs):
    """seqrun's op counts after the -O pipeline and the kernel chosen for SelectiveScan nodes."""
    proc = subprocess.run([args.seqrun, "inspect", model, "--format", "json", f"-O{args.opt_level}"],
                          capture_output=True, text=True)
    ops = {}
    if proc.returncode == 0:
        try:
            info = json.loads(proc.stdout)
            raw = info.get("ops", {})
            ops = raw if isinstance(raw, dict) else {o["op"]: o["count"] for o in raw}
        except (json.JSONDecodeError, KeyError, TypeError):
            ops = {}
    kernels = set()
    shapes = []
    for spec in inputs:
        name, _, path = spec.partition("=")
        shapes += ["--input-shape", name + "=" + "x".join(str(d) for d in np.load(path, mmap_mode="r").shape)]
    proc = subprocess.run([args.seqrun, "--threads", str(args.threads), "inspect", model, "--placement",
                           f"-O{args.opt_level}"] + shapes, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if "SelectiveScan" in line:
            for word in line.replace(",", " ").split():
                if word.endswith("selective_scan") or word == "reference":
                    kernels.add(word)
    return ops, sorted(kernels)


def max_rel_err(output_file, reference_file):
    if output_file is None or not os.path.exists(output_file) or not os.path.exists(reference_file):
        return None
    out = np.load(output_file).astype(np.float64)
    ref = np.load(reference_file).astype(np.float64)
    if out.shape != ref.shape:
        return float("inf")
    scale = float(np.max(np.abs(ref))) or 1.0
    return float(np.max(np.abs(out - ref))) / scale


class Workload:
    """What one workload runs: model files per runtime, inputs, output name, reference and token count."""

    def __init__(self, name, folder, onnx_file, seqrun_file, inputs, output, reference, tokens, torch_kind):
        self.name, self.folder, self.onnx, self.seqrun = name, folder, onnx_file, seqrun_file
        self.inputs, self.output, self.reference, self.tokens, self.torch_kind = (inputs, output, reference, tokens,
                                                                                    torch_kind)


def prepare(name, args):
    if name == "block":
        export(args, "block")
        folder = os.path.join(args.out, f"block_b1_l{args.seq}")
        onnx_file = os.path.join(folder, "block.onnx")
        seqrun_file = to_seqrun(args, onnx_file, os.path.join(folder, "block.seqrun"), "onnx")
        return Workload(name, folder, onnx_file, seqrun_file, ["hidden_states=" + os.path.join(folder, "hidden_states.npy")],
                        "output.npy", os.path.join(folder, "reference_output.npy"), args.seq, "block")
    if name == "scan":
        export(args, "scan")
        folder = os.path.join(args.out, f"scan_b1_l{args.seq}")
        onnx_file = os.path.join(folder, "scan.onnx")
        seqrun_file = to_seqrun(args, onnx_file, os.path.join(folder, "scan.seqrun"), "onnx")
        return Workload(name, folder, onnx_file, seqrun_file, [f"{n}={os.path.join(folder, n + '.npy')}" for n in SCAN_INPUTS],
                        "y.npy", os.path.join(folder, "reference_y.npy"), args.seq, "scan")
    extra = [] if args.no_model_reference else ["--model-reference"]
    if args.model_onnx:
        extra.append("--model-onnx")
    export(args, "model", extra)
    folder = os.path.join(args.out, f"mamba130m_n{args.layers}_v{args.vocab}_p{args.prompt}")
    seqrun_file = to_seqrun(args, folder, os.path.join(folder, "model.seqrun"), "hf")
    onnx_file = os.path.join(folder, "model.onnx") if args.model_onnx else None
    return Workload(name, folder, onnx_file, seqrun_file, ["input_ids=" + os.path.join(folder, "input_ids.npy")],
                    "logits.npy", os.path.join(folder, "reference_logits.npy"), args.prompt, "model")


def runtime_command(runtime, args, w, out_dir):
    common = ["--warmup", str(args.warmup), "--repeat", str(args.repeat), "--threads", str(args.threads),
              "--output-dir", out_dir]
    if runtime == "seqrun":
        inputs = [a for spec in w.inputs for a in ("--input", spec)]
        return [args.seqrun, "bench", w.seqrun, f"-O{args.opt_level}", "--json"] + inputs + common
    if runtime == "ort":
        inputs = [a for spec in w.inputs for a in ("--input", spec)]
        return ["node", os.path.join(BENCH_DIR, "ort", "run_ort.js"), w.onnx] + inputs + common
    return [sys.executable, os.path.join(HERE, "run_torch_mamba.py"), w.folder, "--kind", w.torch_kind] + common


def bench(name, args):
    w = prepare(name, args)
    runtimes = [r for r in args.runtimes if not (r == "ort" and w.onnx is None)]
    summary = {"workload": name, "tokens": w.tokens, "errors": {}}
    if "seqrun" in runtimes:
        summary["seqrun_ops"], summary["seqrun_scan_kernels"] = op_counts(args, w.seqrun, w.inputs)
    results = {r: [] for r in runtimes}
    runs_dir = os.path.join(args.out, "runs", name)
    for round_index in range(args.rounds):
        k = round_index % len(runtimes)
        for runtime in runtimes[k:] + runtimes[:k]:
            if runtime in summary["errors"]:
                continue
            command = runtime_command(runtime, args, w, os.path.join(runs_dir, runtime))
            if round_index == 0:
                print("  " + " ".join(shlex.quote(c) for c in command))
            result, error = run_json(command, args.timeout)
            if error is not None:
                summary["errors"][runtime] = error
                print(f"  {LABELS[runtime]} failed: {error}")
                continue
            results[runtime].append(result)
            print(f"  round {round_index + 1}/{args.rounds} {LABELS[runtime]}: median {result['median_ms']:.2f} ms")
    for runtime in RUNTIMES:
        runs = results.get(runtime, [])
        if not runs or runtime in summary["errors"]:
            summary[runtime] = None
            continue
        entry = {"median_ms": median([r["median_ms"] for r in runs]), "min_ms": min(r["min_ms"] for r in runs),
                 "round_medians_ms": [r["median_ms"] for r in runs], "load_ms": median([r["load_ms"] for r in runs]),
                 "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
                 "max_rel_err": max_rel_err(os.path.join(runs_dir, runtime, w.output), w.reference)}
        for key in ("arena_bytes", "arena_lower_bound_bytes"):
            if key in runs[-1]:
                entry[key] = runs[-1][key]
        summary[runtime] = entry
    return summary


def scan_bytes(seq):
    d, n = BLOCK["d_inner"], BLOCK["d_state"]
    return 4 * (4 * d * seq + 2 * n * seq + d * n + 2 * d)


def fmt(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


def print_table(summaries, runtimes):
    def ms(s, r):
        return None if s.get(r) is None else s[r]["median_ms"]

    header = ["workload"] + [f"{LABELS[r]} ms" for r in runtimes]
    header += [f"{LABELS[r]}/seqrun" for r in runtimes if r != "seqrun" and "seqrun" in runtimes]
    header += ["tokens/s (" + " / ".join(LABELS[r] for r in runtimes) + ")",
               "max rel err vs PyTorch ref (" + " / ".join(LABELS[r] for r in runtimes) + ")",
               "peak RSS MiB (" + " / ".join(LABELS[r] for r in runtimes) + ")", "seqrun arena MiB"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for s in summaries:
        row = [s["workload"]] + [fmt(ms(s, r)) for r in runtimes]
        if "seqrun" in runtimes:
            for r in runtimes:
                if r != "seqrun":
                    a, b = ms(s, r), ms(s, "seqrun")
                    row.append("-" if a is None or not b else f"{a / b:.1f}x")
        row.append(" / ".join("-" if ms(s, r) is None else f"{s['tokens'] / (ms(s, r) / 1e3):.0f}" for r in runtimes))
        row.append(" / ".join("-" if s.get(r) is None else fmt(s[r]["max_rel_err"], ".1e") for r in runtimes))
        row.append(" / ".join("-" if s.get(r) is None else f"{s[r]['peak_rss_mib']:.0f}" for r in runtimes))
        seq = s.get("seqrun") or {}
        arena = seq.get("arena_bytes")
        row.append("-" if arena is None else f"{arena / 2**20:.1f}")
        print("| " + " | ".join(row) + " |")


def print_goals(summaries, bandwidth, args):
    for s in summaries:
        seq = s.get("seqrun")
        if seq is None:
            continue
        notes = []
        name = s["workload"]
        if "seqrun_ops" in s:
            ops = s["seqrun_ops"]
            notes.append("seqrun ops after -O%d: SelectiveScan %d, Loop %d, LinearRecurrence %d; scan kernel %s" % (
                args.opt_level, ops.get("SelectiveScan", 0), ops.get("Loop", 0), ops.get("LinearRecurrence", 0),
                ", ".join(s.get("seqrun_scan_kernels") or ["?"])))
        if name == "block":
            for r, key in (("torch", "torch_over_seqrun_block"), ("ort", "ort_over_seqrun_block")):
                if s.get(r) is not None:
                    ratio = s[r]["median_ms"] / seq["median_ms"]
                    goal = GOALS[key]
                    notes.append(f"{LABELS[r]}/seqrun {ratio:.1f}x ({'met' if ratio >= goal else 'NOT met'}: "
                                 f"goal >= {goal:.0f}x)")
            state_bytes = BLOCK["d_inner"] * BLOCK["d_state"] * args.seq * 4
            arena = seq.get("arena_bytes")
            if arena is not None:
                notes.append(f"arena {arena / 2**20:.1f} MiB vs one B×L×D×N tensor {state_bytes / 2**20:.0f} MiB "
                             f"({'never allocated' if arena < state_bytes else 'MAY BE allocated'})")
        if name == "scan":
            gbs = scan_bytes(args.seq) / (seq["median_ms"] / 1e3) / 1e9
            line = f"SelectiveScan {gbs:.1f} GB/s for {scan_bytes(args.seq) / 1e6:.1f} MB"
            if bandwidth:
                fraction = gbs / bandwidth["triad_best_gbs"]
                line += (f" = {fraction:.0%} of the triad bandwidth {bandwidth['triad_best_gbs']:.1f} GB/s "
                         f"({'met' if fraction >= GOALS['scan_bandwidth_fraction'] else 'NOT met'}: goal >= 50%)")
            notes.append(line)
        if name == "model":
            tps = s["tokens"] / (seq["median_ms"] / 1e3)
            goal = GOALS["model_tokens_per_s"]
            notes.append(f"prefill {tps:.0f} tokens/s ({'met' if tps >= goal else 'NOT met'}: goal >= {goal:.0f}; "
                         "llama.cpp 148)")
        print(f"- {name}: " + "; ".join(notes))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default="block,scan,model", help="comma-separated subset of block,scan,model")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help="comma-separated subset of seqrun,ort,torch")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--opt-level", type=int, default=1, choices=(0, 1))
    parser.add_argument("--seq", type=int, default=2048, help="block and scan sequence length")
    parser.add_argument("--prompt", type=int, default=512, help="model prompt length")
    parser.add_argument("--layers", type=int, default=24, help="model layers (smoke tests: fewer)")
    parser.add_argument("--vocab", type=int, default=50280, help="model vocabulary (smoke tests: smaller)")
    parser.add_argument("--model-onnx", action="store_true", help="also export the model to ONNX and run it in ORT")
    parser.add_argument("--no-model-reference", action="store_true", help="skip PyTorch's reference logits")
    parser.add_argument("--no-bandwidth", action="store_true", help="skip the memory bandwidth measurement")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "build", "bench", "mamba"))
    parser.add_argument("--seqrun", default=os.path.join(REPO_ROOT, "build", "tools", "seqrun"))
    parser.add_argument("--export", default=os.path.join(REPO_ROOT, "build", "tools", "seqrun-export"))
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per benchmark process")
    parser.add_argument("--json", default=None, help="also write all numbers to this JSON file")
    args = parser.parse_args()
    names = [w for w in args.workloads.split(",") if w]
    for w in names:
        if w not in ("block", "scan", "model"):
            parser.error(f"unknown workload '{w}'")
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
    if "ort" in args.runtimes and not os.path.exists(os.path.join(BENCH_DIR, "ort", "node_modules", "onnxruntime-node")):
        parser.error("onnxruntime-node is not installed: run tools/bench/setup.sh")

    print(f"command: {' '.join(shlex.quote(a) for a in sys.argv)}")
    print(f"machine: {machine_description()}")
    print(f"settings: {args.rounds} rounds x (warmup {args.warmup} + {args.repeat} timed runs), {args.threads} threads, "
          f"seqrun -O{args.opt_level}; block/scan seq {args.seq}; model {args.layers} layers, vocab {args.vocab}, "
          f"prompt {args.prompt}")
    start = time.time()
    bandwidth = None if args.no_bandwidth or "scan" not in names else measure_bandwidth(args)
    if bandwidth:
        print(f"memory bandwidth ({bandwidth['threads']} threads): triad best {bandwidth['triad_best_gbs']:.1f} GB/s, "
              f"median {bandwidth['triad_median_gbs']:.1f}; read best {bandwidth['read_best_gbs']:.1f} GB/s")
    summaries = []
    for name in names:
        print(f"workload {name}:")
        summaries.append(bench(name, args))
    print(f"\n(took {time.time() - start:.0f} s; ms = median over rounds of each process's median; tokens/s = "
          "sequence or prompt tokens / that median)\n")
    print_table(summaries, args.runtimes)
    print()
    print_goals(summaries, bandwidth, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": sys.argv, "machine": machine_description(), "bandwidth": bandwidth,
                       "summaries": summaries}, f, indent=2)
    return 1 if any(s["errors"] for s in summaries) else 0


if __name__ == "__main__":
    sys.exit(main())
