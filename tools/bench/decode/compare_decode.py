#!/usr/bin/python3
"""Side-by-side decode benchmark: seqrun (seqrun-bench-decode) vs eager PyTorch (run_torch_decode.py) on a
Mamba-130M-shaped and a Llama-134M-shaped model (tools/bench/decode/README.md).

  tools/bench/decode/compare_decode.py                      # both models, contexts 1024,4096,16384 (+2048 for
                                                            # Llama), 3 rounds, 2 threads
  tools/bench/decode/compare_decode.py --models mamba --contexts 1024 --rounds 1
  tools/bench/decode/compare_decode.py --layers 2 --vocab 1000 --contexts 64,128 --steps 4 --repeat 3 \\
      --prefill 64 --rounds 1                              # smoke test, small checkpoints, ~1 min

What it does: writes the HF-layout checkpoints into --out when missing (make_checkpoints.py), converts each with
`seqrun-export hf` (again when the checkpoint or seqrun-export is newer), then runs --rounds rounds; in each,
per model, seqrun-bench-decode --json and run_torch_decode.py as separate processes one after the other, the order
alternating between rounds, with the same contexts, steps, repetitions, prefill prompt and thread count. Each
process reports per context the median ms/token over its --repeat repetitions of --steps steps, and the median
prefill time of a --prefill-token prompt; the table shows the median over rounds. PyTorch's Mamba prefill runs the
sequential reference scan (mamba_ssm's selective_scan_ref algorithm); its steps the HF slow path's state update.
Goals are checked below the table. --json FILE keeps every number.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "mamba"))
sys.path.insert(0, HERE)
from compare_mamba import machine_description, median, run_json  # noqa: E402
from make_checkpoints import DEFAULT_OUT, MODELS, folder_name  # noqa: E402

RUNTIMES = ("seqrun", "torch")
LABELS = {"seqrun": "seqrun", "torch": "PyTorch"}
# The goals (f32, 2 threads) and llama.cpp's numbers on the same machine.
GOALS = {"mamba_decode_tokens_per_s": 38.0, "llama_decode_tokens_per_s": 34.0, "mamba_prefill_tokens_per_s": 370.0}
LLAMA_CPP = {"mamba_decode": "32", "llama_decode": "28.5 flash attention off, 19.2 on", "mamba_prefill": "148"}


def newer(path, than):
    return os.path.exists(path) and all(os.path.getmtime(path) >= os.path.getmtime(t) for t in than)


def prepare_model(args, model):
    """Checkpoint folder (written if missing) and its .seqrun (exported if missing or stale)."""
    folder = os.path.join(args.out, folder_name(model, args.layers, args.vocab))
    if not all(os.path.exists(os.path.join(folder, f)) for f in ("config.json", "model.safetensors")):
        command = [sys.executable, os.path.join(HERE, "make_checkpoints.py"), args.out, "--models", model]
        if args.layers is not None:
            command += ["--layers", str(args.layers)]
        if args.vocab is not None:
            command += ["--vocab", str(args.vocab)]
        subprocess.run(command, check=True)
    target = os.path.join(folder, "model.seqrun")
    if "seqrun" in args.runtimes and not newer(target, [os.path.join(folder, "model.safetensors"), args.export]):
        proc = subprocess.run([args.export, "hf", folder, "-o", target], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"seqrun-export hf {folder} failed: {proc.stderr.strip()}")
        print("  " + proc.stdout.strip())
    return folder, target


def model_contexts(args, model):
    contexts = list(args.contexts)
    if model == "llama" and args.llama_goal_context > 0:
        contexts.append(args.llama_goal_context)
    return sorted(set(contexts))


def runtime_command(runtime, args, model, folder, seqrun_file, prefill_logits="all", dump=None):
    common = ["--contexts", ",".join(str(c) for c in model_contexts(args, model)), "--steps", str(args.steps),
              "--repeat", str(args.repeat), "--warmup-steps", str(args.warmup_steps), "--prefill", str(args.prefill),
              "--prefill-repeat", str(args.prefill_repeat), "--prefill-chunk", str(args.prefill_chunk),
              "--threads", str(args.threads)]
    if runtime == "seqrun":
        return [args.bench, seqrun_file, "--json"] + common + (["--dump", dump] if dump else [])
    return [sys.executable, os.path.join(HERE, "run_torch_decode.py"), folder, "--prefill-logits",
            prefill_logits] + common


def verify_command(args, folder, dump):
    return [sys.executable, os.path.join(HERE, "run_torch_decode.py"), folder, "--verify", dump, "--threads",
            str(args.threads), "--prefill-chunk", str(args.prefill_chunk)]


def bench_model(args, model):
    folder, seqrun_file = prepare_model(args, model)
    summary = {"model": folder_name(model, args.layers, args.vocab), "kind": model, "folder": folder,
               "contexts": model_contexts(args, model), "errors": {}, "runs": {r: [] for r in args.runtimes}}
    dump = os.path.join(args.out, "runs", summary["model"], "seqrun_dump")
    verify = not args.no_verify and all(r in args.runtimes for r in RUNTIMES)
    # PyTorch's prefill computes what seqrun's graph computes: every position's logits or the last one's.
    prefill_logits = args.prefill_logits or "all"
    for round_index in range(args.rounds):
        order = args.runtimes if round_index % 2 == 0 else list(reversed(args.runtimes))
        for runtime in order:
            if runtime in summary["errors"]:
                continue
            command = runtime_command(runtime, args, model, folder, seqrun_file, prefill_logits,
                                      dump if verify and round_index == 0 else None)
            if round_index == 0:
                print("  " + " ".join(shlex.quote(c) for c in command))
            result, error = run_json(command, args.timeout)
            if error is not None:
                summary["errors"][runtime] = error
                print(f"  {LABELS[runtime]} failed: {error}")
                continue
            summary["runs"][runtime].append(result)
            if runtime == "seqrun" and args.prefill_logits is None:
                prefill_logits = "all" if result.get("logits_per_position", True) else "last"
            steps = ", ".join(f"{d['context']}: {d['ms_per_token_median']:.2f}" for d in result["decode"])
            print(f"  round {round_index + 1}/{args.rounds} {LABELS[runtime]}: ms/token {steps}")
    summary["torch_prefill_logits"] = prefill_logits
    if verify and summary["runs"]["seqrun"]:
        command = verify_command(args, folder, dump)
        print("  " + " ".join(shlex.quote(c) for c in command))
        result, error = run_json(command, args.timeout)
        summary["verify"] = result if error is None else {"error": error}
        if error is not None:
            print(f"  verification failed: {error}")
    for runtime in args.runtimes:
        runs = summary["runs"][runtime]
        if not runs:
            summary[runtime] = None
            continue
        entry = {"decode_ms_per_token": {}, "peak_rss_mib": max(r["peak_rss_mib"] for r in runs)}
        for c in summary["contexts"]:
            entry["decode_ms_per_token"][c] = median([d["ms_per_token_median"] for r in runs for d in r["decode"]
                                                      if d["context"] == c])
        prefills = [r["prefill"]["median_ms"] for r in runs if r.get("prefill")]
        entry["prefill_ms"] = median(prefills) if prefills else None
        if runtime == "seqrun":
            entry["stateful"] = runs[-1].get("stateful")
        summary[runtime] = entry
    return summary


def fmt(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


def tokens_per_s(summary, runtime, context):
    entry = summary.get(runtime)
    if entry is None:
        return None
    ms = entry["decode_ms_per_token"].get(context)
    return None if not ms else 1e3 / ms


def prefill_tokens_per_s(summary, runtime, args):
    entry = summary.get(runtime)
    if entry is None or not entry.get("prefill_ms"):
        return None
    return args.prefill / (entry["prefill_ms"] / 1e3)


def print_tables(summaries, args):
    both = all(r in args.runtimes for r in RUNTIMES)
    header = ["model", "context"] + [f"{LABELS[r]} tok/s" for r in args.runtimes]
    header += ["seqrun/PyTorch"] if both else []
    header += [f"{LABELS[r]} ms/token" for r in args.runtimes]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for s in summaries:
        for c in s["contexts"]:
            tps = {r: tokens_per_s(s, r, c) for r in args.runtimes}
            row = [s["model"], str(c)] + [fmt(tps[r]) for r in args.runtimes]
            if both:
                row.append("-" if not tps["seqrun"] or not tps["torch"] else f"{tps['seqrun'] / tps['torch']:.2f}x")
            row += [fmt(None if tps[r] is None else 1e3 / tps[r], ".3f") for r in args.runtimes]
            print("| " + " | ".join(row) + " |")
    if args.prefill <= 0:
        return
    print()
    header = ["model", "prefill tokens"] + [f"{LABELS[r]} tok/s" for r in args.runtimes]
    header += ["seqrun/PyTorch"] if both else []
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for s in summaries:
        tps = {r: prefill_tokens_per_s(s, r, args) for r in args.runtimes}
        row = [s["model"], str(args.prefill)] + [fmt(tps[r], ".1f") for r in args.runtimes]
        if both:
            row.append("-" if not tps["seqrun"] or not tps["torch"] else f"{tps['seqrun'] / tps['torch']:.2f}x")
        print("| " + " | ".join(row) + " |")


def linear_fit(xs, ys):
    """Least squares y = a + b x: (a, b, R^2)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    syy = sum((y - my) ** 2 for y in ys)
    b = sxy / sxx if sxx else 0.0
    r2 = (sxy * sxy) / (sxx * syy) if sxx and syy else 1.0
    return my - b * mx, b, r2


def print_goals(summaries, args):
    """One line per model: the step time's growth with context, and the issue's goals where they apply (the full-size
    checkpoints; the prefill goal at a 512-token prompt)."""
    full_size = args.layers is None and args.vocab is None

    def verdict(value, goal, applies=True):
        return ("met" if value >= goal else "NOT met") if full_size and applies else "goal not applicable here"

    for s in summaries:
        seq = s.get("seqrun")
        if seq is None:
            continue
        notes = []
        if seq.get("stateful") is False:
            notes.append("seqrun graph is NOT stateful (every step reruns the whole history)")
        contexts = s["contexts"]
        ms = [seq["decode_ms_per_token"][c] for c in contexts]
        if len(contexts) >= 2:
            a, b, r2 = linear_fit(contexts, ms)
            notes.append(f"step time {ms[0]:.2f} ms at {contexts[0]} -> {ms[-1]:.2f} ms at {contexts[-1]} "
                         f"({ms[-1] / ms[0]:.2f}x; fit {a:.2f} ms + {b * 1e3:.3f} ms per 1k tokens, R^2 {r2:.2f})")
        if s["kind"] == "mamba":
            worst = min(1e3 / m for m in ms)
            goal = GOALS["mamba_decode_tokens_per_s"]
            notes.append(f"decode {worst:.1f} tok/s at the slowest context ({verdict(worst, goal)}: goal >= "
                         f"{goal:.0f} at every context; llama.cpp {LLAMA_CPP['mamba_decode']})")
            if len(contexts) >= 2:
                notes.append(f"max/min step time {max(ms) / min(ms):.2f} (flat: {'yes' if max(ms) <= 1.1 * min(ms) else 'NO'}"
                             ", goal <= 1.10)")
            tps = prefill_tokens_per_s(s, "seqrun", args)
            if tps is not None:
                goal = GOALS["mamba_prefill_tokens_per_s"]
                notes.append(f"prefill {args.prefill} tokens {tps:.0f} tok/s ({verdict(tps, goal, args.prefill == 512)}: "
                             f"goal >= {goal:.0f} at 512; llama.cpp {LLAMA_CPP['mamba_prefill']})")
        if s["kind"] == "llama":
            c = args.llama_goal_context
            if c in seq["decode_ms_per_token"]:
                tps = 1e3 / seq["decode_ms_per_token"][c]
                goal = GOALS["llama_decode_tokens_per_s"]
                notes.append(f"decode at context {c}: {tps:.1f} tok/s ({verdict(tps, goal, c == 2048)}: goal >= "
                             f"{goal:.0f} at 2048; llama.cpp {LLAMA_CPP['llama_decode']})")
            if len(contexts) >= 3:
                notes.append(f"linear in context: {'yes' if r2 >= 0.95 else 'NO'} (R^2 {r2:.2f}, goal >= 0.95)")
        check = s.get("verify") or {}
        if "decode_max_rel_err" in check or "prefill_max_rel_err" in check:
            errs = [f"{what} {check[key]:.1e}" for what, key in (("decode", "decode_max_rel_err"),
                                                                  ("prefill", "prefill_max_rel_err")) if key in check]
            worst = max(check.get("decode_max_rel_err", 0.0), check.get("prefill_max_rel_err", 0.0))
            notes.append(f"seqrun's logits vs PyTorch's on the same tokens, max rel err: {', '.join(errs)} "
                         f"({'ok' if worst < 1e-4 else 'MISMATCH'})")
        elif "error" in check:
            notes.append(f"logits check failed: {check['error']}")
        print(f"- {s['model']}: " + "; ".join(notes))


def parse_contexts(parser, text):
    try:
        values = [int(c) for c in text.split(",") if c]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        parser.error(f"--contexts '{text}': comma-separated positive token counts")
    return values


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of mamba,llama")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help="comma-separated subset of seqrun,torch")
    parser.add_argument("--contexts", default="1024,4096,16384", help="decode context lengths (both models)")
    parser.add_argument("--llama-goal-context", type=int, default=2048,
                        help="one more context for the Llama model, the goal's (0 = none)")
    parser.add_argument("--steps", type=int, default=32, help="timed steps per repetition")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions per context (each process's median)")
    parser.add_argument("--warmup-steps", type=int, default=4)
    parser.add_argument("--prefill", type=int, default=512, help="prompt tokens of the timed prefill (0 = skip)")
    parser.add_argument("--prefill-repeat", type=int, default=5)
    parser.add_argument("--prefill-chunk", type=int, default=512, help="prompt tokens per graph run / forward")
    parser.add_argument("--prefill-logits", choices=("all", "last"), default=None,
                        help="PyTorch's prefill computes the logits of every prompt position or of the last only "
                             "(default: what seqrun's graph computes, its logits_per_position)")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip checking seqrun's logits against PyTorch's on the same tokens")
    parser.add_argument("--rounds", type=int, default=3, help="process pairs per model (the table: their median)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layers", type=int, default=None, help="smaller checkpoints for smoke runs")
    parser.add_argument("--vocab", type=int, default=None, help="smaller checkpoints for smoke runs")
    parser.add_argument("--out", default=DEFAULT_OUT, help="checkpoints and .seqrun files (never commit them)")
    parser.add_argument("--bench", default=os.path.join(REPO_ROOT, "build", "tools", "bench", "decode",
                                                        "seqrun-bench-decode"))
    parser.add_argument("--export", default=os.path.join(REPO_ROOT, "build", "tools", "seqrun-export"))
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per benchmark process")
    parser.add_argument("--json", default=None, help="also write all numbers to this JSON file")
    args = parser.parse_args()
    args.contexts = parse_contexts(parser, args.contexts)
    models = [m for m in args.models.split(",") if m]
    args.runtimes = [r for r in args.runtimes.split(",") if r]
    for m in models:
        if m not in MODELS:
            parser.error(f"unknown model '{m}' (known: {', '.join(MODELS)})")
    for r in args.runtimes:
        if r not in RUNTIMES:
            parser.error(f"unknown runtime '{r}' (known: {', '.join(RUNTIMES)})")
    if (args.rounds < 1 or args.steps < 1 or args.repeat < 1 or args.threads < 1 or args.prefill_repeat < 1
            or args.warmup_steps < 0 or args.prefill < 0 or args.prefill_chunk < 0):
        parser.error("--rounds, --steps, --repeat, --threads, --prefill-repeat must be >= 1; the others >= 0")
    if "seqrun" in args.runtimes:
        for tool in (args.bench, args.export):
            if not os.access(tool, os.X_OK):
                parser.error(f"{tool} not found: build it first (ninja -C build seqrun-bench-decode seqrun-export)")

    print(f"command: {' '.join(shlex.quote(a) for a in sys.argv)}")
    print(f"machine: {machine_description()}")
    print(f"settings: {args.rounds} rounds; per context {args.warmup_steps} warmup + {args.repeat} x {args.steps} "
          f"timed steps; prefill {args.prefill} tokens x {args.prefill_repeat} (chunk {args.prefill_chunk}, PyTorch "
          f"logits: {args.prefill_logits or 'as seqrun'}); {args.threads} threads")
    start = time.time()
    summaries = []
    for model in models:
        print(f"model {model}:")
        summaries.append(bench_model(args, model))
    print(f"\n(took {time.time() - start:.0f} s; tok/s = 1000 / ms per token; ms per token = median over rounds of "
          "each process's median over its repetitions)\n")
    print_tables(summaries, args)
    print()
    print_goals(summaries, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": sys.argv, "machine": machine_description(), "settings": vars(args),
                       "summaries": summaries}, f, indent=2)
        print(f"\nwrote {args.json}")
    return 1 if any(s["errors"] for s in summaries) else 0


if __name__ == "__main__":
    sys.exit(main())
