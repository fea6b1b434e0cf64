#!/usr/bin/python3
"""Attention benchmark: seqrun vs ONNX Runtime on causal softmax attention (8 heads x 64, batch 1), plus
seqrun's LinearAttention prefill against its ChunkedAttention and the linear form's decode-step cost against
the context length. README.md in this folder has the table and the goals.

  tools/bench/attention/compare_attention.py                                  # 1k, 4k, 16k (+ORT), 64k
  tools/bench/attention/compare_attention.py --seq 256,1024 --linear-seq 1024 --decode-contexts 256,1024 \\
      --rounds 1 --repeat 2 --warmup 1                                        # smoke test, ~1 min

Parts (--parts, default all three):
  softmax  per length: `seqrun bench attention.seqrun -O1` (fuse-attention + chunk-attention turn the exported
           MatMul/Where/Softmax/MatMul into one ChunkedAttention; at 64k the symbolic-length export stays
           Attention, which runs the same blocked kernel) and ONNX Runtime (ort/run_ort.js, lengths up to
           --ort-max-seq), alternating per round; median latency, peak RSS, error at the checked rows.
  linear   at --linear-seq: seqrun's LinearAttention prefill (linear, RetNet-style gated, GLA-style gated)
           against seqrun's ChunkedAttention on the same q/k/v (softmax part's median at that length).
  decode   per context length L: one LinearAttention decode step whose past_state is the state a prefill of
           L tokens produced (seqrun's own present_state output): the step's median latency, which must not
           grow with L (the state is [1, 8, 64, 64] whatever L is).
Run tools/bench/setup.sh once first (ONNX Runtime for node); models come from export_attention.py.
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
FORMS = ("linear", "retnet", "gla")


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
        return None, lines[-1] if lines else f"exit code {proc.returncode} (killed: out of memory?)"
    try:
        return json.loads(proc.stdout), None
    except json.JSONDecodeError as e:
        return None, f"output is not JSON ({e})"


def to_seqrun(onnx_path, export_tool):
    """model.onnx -> model.seqrun (redone when the .onnx is newer); the .onnx itself when export fails."""
    seqrun_path = os.path.splitext(onnx_path)[0] + ".seqrun"
    if os.path.exists(seqrun_path) and os.path.getmtime(seqrun_path) >= os.path.getmtime(onnx_path):
        return seqrun_path
    proc = subprocess.run([export_tool, "onnx", onnx_path, "-o", seqrun_path], capture_output=True, text=True)
    if proc.returncode == 0:
        return seqrun_path
    print(f"note: seqrun-export failed on {onnx_path} ({proc.stderr.strip()}); seqrun runs the .onnx")
    return onnx_path


def seqrun_command(args, model, inputs, out_dir, warmup=None, repeat=None):
    command = [args.seqrun, "bench", model, "-O1", "--json", "--threads", str(args.threads),
               "--warmup", str(args.warmup if warmup is None else warmup),
               "--repeat", str(args.repeat if repeat is None else repeat), "--output-dir", out_dir]
    for name, path in inputs:
        command += ["--input", f"{name}={path}"]
    return command


def ort_command(args, model, inputs, out_dir):
    command = ["node", os.path.join(BENCH_DIR, "ort", "run_ort.js"), model, "--threads", str(args.threads),
               "--warmup", str(args.warmup), "--repeat", str(args.repeat), "--output-dir", out_dir]
    for name, path in inputs:
        command += ["--input", f"{name}={path}"]
    return command


def attention_kernel(args, model, folder):
    """The kernel seqrun places on the attention node (`seqrun inspect --placement`), for the table."""
    command = [args.seqrun, "inspect", model, "-O1", "--placement"]
    for n in "qkv":
        command += ["--input-shape", f"{n}=" + "x".join(str(d) for d in np.load(os.path.join(folder, f"{n}.npy"),
                                                                               mmap_mode="r").shape)]
    proc = subprocess.run(command, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts and parts[0] in ("ChunkedAttention", "Attention"):
            return f"{parts[0]} ({parts[-1]})"
    return "?"


def rel_err(out, ref):
    scale = float(np.max(np.abs(ref))) or 1.0
    return float(np.max(np.abs(out.astype(np.float64) - ref))) / scale


def softmax_error(folder, out_dir):
    path = os.path.join(out_dir, "y.npy")
    if not os.path.exists(path):
        return None
    rows = np.load(os.path.join(folder, "check_rows.npy"))
    y = np.load(path, mmap_mode="r")
    return rel_err(np.asarray(y[:, :, rows, :]), np.load(os.path.join(folder, "check_y.npy")))


def run_rounds(args, commands, label):
    """commands: {runtime: argv}; alternates the runtimes for --rounds rounds. Returns ({runtime: [json]}, errors)."""
    results = {r: [] for r in commands}
    errors = {}
    names = list(commands)
    for round_index in range(args.rounds):
        k = round_index % len(names)
        for runtime in names[k:] + names[:k]:
            if runtime in errors:
                continue
            if round_index == 0:
                print("  " + " ".join(shlex.quote(c) for c in commands[runtime]))
            result, error = run_json(commands[runtime], args.timeout)
            if error is not None:
                errors[runtime] = error
                print(f"  {label} {runtime} failed: {error}")
                continue
            results[runtime].append(result)
            print(f"  {label} round {round_index + 1}/{args.rounds} {runtime}: median {result['median_ms']:.2f} ms, "
                  f"peak RSS {result['peak_rss_mib']:.0f} MiB")
    return results, errors


def summarize(runs):
    if not runs:
        return None
    return {"median_ms": median([r["median_ms"] for r in runs]), "min_ms": min(r["min_ms"] for r in runs),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs), "round_medians_ms": [r["median_ms"] for r in runs]}


def softmax_part(args, lengths):
    rows = []
    for seq in lengths:
        folder = os.path.join(args.models, f"seq{seq}")
        onnx_path = os.path.join(folder, "attention.onnx")
        model = to_seqrun(onnx_path, args.export)
        inputs = [(n, os.path.join(folder, f"{n}.npy")) for n in "qkv"]
        out = os.path.join(args.out, f"seq{seq}")
        commands = {"seqrun": seqrun_command(args, model, inputs, os.path.join(out, "seqrun"))}
        if "ort" in args.runtimes and seq <= args.ort_max_seq:
            commands["ort"] = ort_command(args, onnx_path, inputs, os.path.join(out, "ort"))
        kernel = attention_kernel(args, model, folder)
        print(f"softmax attention, seq {seq}: seqrun runs {kernel}")
        results, errors = run_rounds(args, commands, f"seq {seq}")
        row = {"seq": seq, "errors": errors, "kernel": kernel}
        for runtime in ("seqrun", "ort"):
            row[runtime] = summarize(results.get(runtime, [])) if runtime not in errors else None
            if row[runtime] is not None:
                row[runtime]["max_rel_err"] = softmax_error(folder, os.path.join(out, runtime))
        rows.append(row)
    return rows


def linear_inputs(folder, form, step=False):
    suffix = "1" if step else ""
    names = ("q", "k", "v") if step else ("qp", "kp", "vp")
    inputs = [(io, os.path.join(folder, f"{n}{suffix}.npy")) for io, n in zip(("query", "key", "value"), names)]
    if form == "gla":
        inputs.append(("decay", os.path.join(folder, f"gla_decay{suffix}.npy")))
    return inputs


def linear_part(args, softmax_rows):
    seq = args.linear_seq
    folder = os.path.join(args.models, f"seq{seq}")
    chunked = next((r["seqrun"] for r in softmax_rows if r["seq"] == seq and r["seqrun"] is not None), None)
    if chunked is None:  # the softmax part did not run this length: run it now
        chunked = softmax_part(argparse.Namespace(**dict(vars(args), runtimes=["seqrun"])), [seq])[0]["seqrun"]
    rows = []
    for form in FORMS:
        model = to_seqrun(os.path.join(folder, f"linear_{form}.onnx"), args.export)
        out = os.path.join(args.out, f"seq{seq}", f"linear_{form}")
        print(f"LinearAttention ({form}) prefill, seq {seq}")
        results, errors = run_rounds(args, {"seqrun": seqrun_command(args, model, linear_inputs(folder, form), out)},
                                     form)
        entry = summarize(results["seqrun"]) if not errors else None
        row = {"form": form, "seq": seq, "errors": errors, "seqrun": entry}
        if entry is not None:
            check_rows = np.load(os.path.join(folder, "check_rows.npy"))
            y = np.load(os.path.join(out, "y.npy"), mmap_mode="r")
            entry["max_rel_err"] = rel_err(np.asarray(y[0, check_rows]),
                                           np.load(os.path.join(folder, f"linear_{form}_check_y.npy")))
            entry["state_rel_err"] = rel_err(np.load(os.path.join(out, "present_state.npy")),
                                             np.load(os.path.join(folder, f"linear_{form}_state.npy")))
            if chunked is not None:
                entry["speedup_vs_chunked"] = chunked["median_ms"] / entry["median_ms"]
        rows.append(row)
    return rows, chunked


def decode_part(args):
    step_folder = os.path.join(args.models, "step")
    rows = []
    for form in FORMS:
        step_model = to_seqrun(os.path.join(step_folder, f"linear_{form}_step.onnx"), args.export)
        for ctx in args.decode_contexts:
            folder = os.path.join(args.models, f"seq{ctx}")
            prefill = to_seqrun(os.path.join(folder, f"linear_{form}.onnx"), args.export)
            state_dir = os.path.join(args.out, f"seq{ctx}", f"linear_{form}_state")
            _, error = run_json(seqrun_command(args, prefill, linear_inputs(folder, form), state_dir, 0, 1),
                                args.timeout)
            row = {"form": form, "context": ctx, "seqrun": None, "errors": {}}
            if error is not None:
                row["errors"]["prefill"] = error
                rows.append(row)
                continue
            inputs = linear_inputs(step_folder, form, step=True)
            inputs.append(("past_state", os.path.join(state_dir, "present_state.npy")))
            out = os.path.join(args.out, "step", f"{form}_ctx{ctx}")
            step_args = argparse.Namespace(**dict(vars(args), repeat=max(args.repeat, args.decode_repeat)))
            results, errors = run_rounds(step_args, {"seqrun": seqrun_command(step_args, step_model, inputs, out)},
                                         f"{form} step after {ctx}")
            row["errors"] = errors
            row["seqrun"] = summarize(results["seqrun"]) if not errors else None
            rows.append(row)
    return rows


def fmt(v, digits=2):
    return "-" if v is None else f"{v:.{digits}f}"


def print_softmax(rows):
    print("| seq | seqrun ms | ORT ms | seqrun/ORT | peak RSS MiB seqrun / ORT | ORT/seqrun RSS | "
          "max rel err seqrun / ORT | seqrun kernel |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        s, o = r["seqrun"], r["ort"]
        sm = s["median_ms"] if s else None
        om = o["median_ms"] if o else None
        ratio = f"{sm / om:.2f}x" if sm and om else "-"
        rss = f"{fmt(s['peak_rss_mib'], 0) if s else '-'} / {fmt(o['peak_rss_mib'], 0) if o else '-'}"
        rss_ratio = f"{o['peak_rss_mib'] / s['peak_rss_mib']:.1f}x" if s and o else "-"
        err = " / ".join("-" if x is None or x.get("max_rel_err") is None else f"{x['max_rel_err']:.1e}" for x in (s, o))
        ort_cell = fmt(om) if o else ("failed: " + r["errors"]["ort"] if "ort" in r["errors"] else "not run")
        print(f"| {r['seq']} | {fmt(sm)} | {ort_cell} | {ratio} | {rss} | {rss_ratio} | {err} | {r['kernel']} |")


def print_goals(softmax_rows, linear_rows, decode_rows):
    for r in softmax_rows:
        s, o = r["seqrun"], r["ort"]
        notes = []
        if s and o:
            ratio = s["median_ms"] / o["median_ms"]
            notes.append(f"latency seqrun/ORT {ratio:.2f} ({'met' if ratio <= 1.0 else 'NOT met'}: goal <= 1)")
            if r["seq"] == 16384:
                rss = s["peak_rss_mib"] / o["peak_rss_mib"]
                notes.append(f"peak RSS seqrun/ORT {rss:.3f} ({'met' if rss <= 0.1 else 'NOT met'}: goal <= 0.1)")
        if s and r["seq"] == 65536:
            gib = s["peak_rss_mib"] / 1024
            notes.append(f"peak RSS {gib:.2f} GiB ({'met' if gib < 2 else 'NOT met'}: goal < 2 GiB)")
        if notes:
            print(f"- seq {r['seq']}: " + "; ".join(notes))
    for r in linear_rows:
        e = r["seqrun"]
        if e and "speedup_vs_chunked" in e:
            x = e["speedup_vs_chunked"]
            print(f"- LinearAttention {r['form']} prefill at {r['seq']}: {x:.1f}x ChunkedAttention "
                  f"({'met' if x >= 5 else 'NOT met'}: goal >= 5x)")
    for form in FORMS:
        times = [(r["context"], r["seqrun"]["median_ms"]) for r in decode_rows if r["form"] == form and r["seqrun"]]
        if len(times) >= 2:
            spread = max(t for _, t in times) / min(t for _, t in times)
            print(f"- {form} decode step: {spread:.2f}x between the slowest and fastest context "
                  f"({'met' if spread <= 1.5 else 'NOT met'}: independent of the context, within noise)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq", default="1024,4096,16384,65536", help="softmax lengths (comma-separated)")
    parser.add_argument("--ort-max-seq", type=int, default=16384, help="longest length ONNX Runtime runs")
    parser.add_argument("--runtimes", default="seqrun,ort", help="seqrun,ort or seqrun")
    parser.add_argument("--parts", default="softmax,linear,decode", help="any of softmax,linear,decode")
    parser.add_argument("--linear-seq", type=int, default=16384, help="length of the linear-vs-chunked prefill")
    parser.add_argument("--decode-contexts", default="1024,4096,16384,65536", help="contexts for the step cost")
    parser.add_argument("--decode-repeat", type=int, default=200, help="timed steps per process (at least --repeat)")
    parser.add_argument("--rounds", type=int, default=3, help="processes per runtime (alternating order)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs inside each process")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs inside each process")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for every runtime")
    parser.add_argument("--models", default=os.path.join(REPO_ROOT, "build", "bench", "attention"))
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "build", "bench", "attention_runs"))
    parser.add_argument("--seqrun", default=os.path.join(REPO_ROOT, "build", "tools", "seqrun"))
    parser.add_argument("--export", default=os.path.join(REPO_ROOT, "build", "tools", "seqrun-export"))
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per benchmark process")
    parser.add_argument("--json", default=None, help="also write every number to this JSON file")
    args = parser.parse_args()
    lengths = [int(s) for s in args.seq.split(",") if s]
    args.decode_contexts = [int(s) for s in args.decode_contexts.split(",") if s]
    args.runtimes = [r for r in args.runtimes.split(",") if r]
    parts = [p for p in args.parts.split(",") if p]
    for p in parts:
        if p not in ("softmax", "linear", "decode"):
            parser.error(f"unknown part '{p}'")
    for tool in (args.seqrun, args.export):
        if not os.access(tool, os.X_OK):
            parser.error(f"{tool} not found: build it first (ninja -C build seqrun seqrun-export)")
    if "ort" in args.runtimes and not os.path.exists(os.path.join(BENCH_DIR, "ort", "node_modules", "onnxruntime-node")):
        parser.error("onnxruntime-node is not installed: run tools/bench/setup.sh")

    needed = set(lengths if "softmax" in parts else [])
    if "linear" in parts:
        needed.add(args.linear_seq)
    if "decode" in parts:
        needed.update(args.decode_contexts)
    subprocess.run([sys.executable, os.path.join(HERE, "export_attention.py"), "--out", args.models, "--seq",
                    ",".join(str(s) for s in sorted(needed))], check=True)

    print(f"command: {' '.join(shlex.quote(a) for a in sys.argv)}")
    print(f"machine: {machine_description()}")
    print(f"settings: {args.rounds} rounds x (warmup {args.warmup} + {args.repeat} timed runs), {args.threads} threads")
    start = time.time()
    softmax_rows = softmax_part(args, lengths) if "softmax" in parts else []
    linear_rows, chunked = linear_part(args, softmax_rows) if "linear" in parts else ([], None)
    decode_rows = decode_part(args) if "decode" in parts else []
    print(f"\n(took {time.time() - start:.0f} s; ms = median over rounds of each process's median; peak RSS = max "
          "over rounds, whole process; errors: max |out - ref| / max |ref| at the checked rows)\n")
    if softmax_rows:
        print_softmax(softmax_rows)
        print()
    if linear_rows:
        print(f"| LinearAttention prefill, seq {args.linear_seq} | seqrun ms | ChunkedAttention ms | speed-up | "
              "max rel err y / state |")
        print("|---|---|---|---|---|")
        for r in linear_rows:
            e = r["seqrun"]
            speed = f"{e['speedup_vs_chunked']:.1f}x" if e and "speedup_vs_chunked" in e else "-"
            err = f"{e['max_rel_err']:.1e} / {e['state_rel_err']:.1e}" if e else "-"
            print(f"| {r['form']} | {fmt(e['median_ms'] if e else None)} | "
                  f"{fmt(chunked['median_ms'] if chunked else None)} | {speed} | {err} |")
        print()
    if decode_rows:
        print("| decode step (LinearAttention, state [1, 8, 64, 64]) | " +
              " | ".join(f"context {c}" for c in args.decode_contexts) + " |")
        print("|---|" + "---|" * len(args.decode_contexts))
        for form in FORMS:
            cells = []
            for c in args.decode_contexts:
                r = next((x for x in decode_rows if x["form"] == form and x["context"] == c), None)
                cells.append(f"{r['seqrun']['median_ms'] * 1000:.0f} µs" if r and r["seqrun"] else "-")
            print(f"| {form} | " + " | ".join(cells) + " |")
        print()
    print_goals(softmax_rows, linear_rows, decode_rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": sys.argv, "machine": machine_description(), "softmax": softmax_rows,
                       "linear": linear_rows, "decode": decode_rows}, f, indent=2)
    failed = any(r["errors"] for r in softmax_rows + linear_rows + decode_rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
