#!/usr/bin/python3
"""Times decoding in eager PyTorch (CPU) the way seqrun-bench-decode times it in seqrun, for compare_decode.py:
the model is decode_torch.py's LlamaDecoder or MambaDecoder (KV cache / recurrent state) on an HF-layout
checkpoint folder (config.json + model.safetensors).

  /usr/bin/python3 tools/bench/decode/run_torch_decode.py FOLDER [--contexts 1024,4096,16384] [--steps 32]
      [--repeat 5] [--warmup-steps 4] [--prefill 512] [--prefill-repeat 5] [--prefill-chunk 512]
      [--prefill-logits all|last] [--threads 2] [--seed 0]
  /usr/bin/python3 tools/bench/decode/run_torch_decode.py FOLDER --verify DUMP_DIR
  /usr/bin/python3 tools/bench/decode/run_torch_decode.py tests/data/hf/mamba_fp32 --check

Per context: prefill that many random tokens (in --prefill-chunk chunks, timed once), snapshot the state, run
--warmup-steps steps, then --repeat repetitions of --steps single-token steps, each restarting from the snapshot;
ms/token = a repetition's time / steps. Then --prefill-repeat timed prefills of a --prefill-token prompt into an
empty sequence (after one warmup), computing the logits of every prompt position (--prefill-logits all, as a
whole-model forward does) or of the last one only. Prints one JSON object in seqrun-bench-decode --json's layout.
--check instead compares the decoder's logits (one chunk; token by token; half a prompt then steps) with the
folder's logits.npy for its input_ids.npy (the tests/data/hf checkpoints) and exits 1 on a mismatch.
--verify DIR feeds the tokens that seqrun-bench-decode --dump DIR wrote (a context in --prefill-chunk chunks, then
its steps one by one; the prefill prompt) and prints, as JSON, max |seqrun - PyTorch| / max |PyTorch| of the final
logits of each.
Run tools/bench/setup.sh once first: without OpenBLAS, Debian's torch 1.13 multiplies with the reference BLAS.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from decode_torch import make_decoder  # noqa: E402

SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


def read_safetensors(path):
    """name -> f32 torch tensor. The layout: u64 LE header length, JSON header (name -> dtype, shape,
    data_offsets relative to the end of the header), raw little-endian data. BF16 is widened by hand (numpy has no
    bfloat16): its 16 bits are the top half of an f32."""
    with open(path, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_len))
        data = f.read()
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] not in SAFETENSORS_DTYPES:
            raise SystemExit(f"{path}: '{name}' has dtype {entry['dtype']} (this reader: F32, F16, BF16)")
        begin, end = entry["data_offsets"]
        raw = np.frombuffer(data[begin:end], dtype=SAFETENSORS_DTYPES[entry["dtype"]])
        if entry["dtype"] == "BF16":
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = torch.from_numpy(raw.astype(np.float32).reshape(entry["shape"]))
    return tensors


def load_checkpoint(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    index = os.path.join(folder, "model.safetensors.index.json")
    tensors = {}
    if os.path.exists(index):
        with open(index) as f:
            for shard in sorted(set(json.load(f)["weight_map"].values())):
                tensors.update(read_safetensors(os.path.join(folder, shard)))
    else:
        tensors = read_safetensors(os.path.join(folder, "model.safetensors"))
    return cfg, tensors


def prefill(decoder, ids, chunk, all_logits):
    """Feeds ids [1, n] in chunks; returns the last chunk's logits."""
    n = ids.shape[1]
    chunk = chunk if chunk > 0 else n
    logits = None
    for start in range(0, n, chunk):
        logits = decoder.forward(ids[:, start:start + chunk], all_logits)
    return logits


def bench_context(decoder, args, context, vocab, gen):
    decoder.reset()
    ids = torch.randint(0, vocab, (1, context), generator=gen)
    start = time.perf_counter()
    prefill(decoder, ids, args.prefill_chunk, False)
    context_prefill_ms = (time.perf_counter() - start) * 1e3
    snapshot = decoder.snapshot()
    steps = torch.randint(0, vocab, (max(args.steps, args.warmup_steps), 1, 1), generator=gen)
    for i in range(args.warmup_steps):
        decoder.forward(steps[i])
    ms_per_token = []
    logits = None
    for _ in range(args.repeat):
        decoder.restore(snapshot)
        start = time.perf_counter()
        for i in range(args.steps):
            logits = decoder.forward(steps[i])
        ms_per_token.append((time.perf_counter() - start) * 1e3 / args.steps)
    med = statistics.median(ms_per_token)
    return {"context": context, "tokens_per_s": 1e3 / med, "ms_per_token_median": med, "ms_per_token": ms_per_token,
            "context_prefill_ms": context_prefill_ms, "restored_each_repetition": True,
            "last_logits_finite": bool(torch.isfinite(logits).all())}


def bench_prefill(decoder, args, vocab, gen):
    ids = torch.randint(0, vocab, (1, args.prefill), generator=gen)
    all_logits = args.prefill_logits == "all"
    decoder.reset()
    prefill(decoder, ids, args.prefill_chunk, all_logits)
    times_ms = []
    for _ in range(args.prefill_repeat):
        decoder.reset()
        start = time.perf_counter()
        prefill(decoder, ids, args.prefill_chunk, all_logits)
        times_ms.append((time.perf_counter() - start) * 1e3)
    med = statistics.median(times_ms)
    return {"tokens": args.prefill, "median_ms": med, "times_ms": times_ms, "tokens_per_s": args.prefill / (med / 1e3),
            "logits": args.prefill_logits}


def check(folder, cfg, tensors):
    """The decoder's logits against the folder's reference logits.npy, three ways."""
    ids = torch.from_numpy(np.load(os.path.join(folder, "input_ids.npy")).astype(np.int64))[:1]
    ref = torch.from_numpy(np.load(os.path.join(folder, "logits.npy")).astype(np.float32))[0]
    n = ids.shape[1]
    decoder = make_decoder(cfg, tensors, n)
    results = {"one chunk": prefill(decoder, ids, 0, True)}
    decoder.reset()
    results["token by token"] = torch.stack([decoder.forward(ids[:, t:t + 1]) for t in range(n)])
    decoder.reset()
    half = n // 2
    first = prefill(decoder, ids[:, :half], 0, True)
    results["half, then steps"] = torch.cat([first] + [decoder.forward(ids[:, t:t + 1])[None] for t in range(half, n)])
    scale = float(ref.abs().max())
    failed = False
    for how, logits in results.items():
        err = float((logits - ref).abs().max()) / scale
        ok = err < 1e-4
        failed |= not ok
        print(f"{folder}: {how}: max |logits - ref| / max |ref| = {err:.2e} ({'ok' if ok else 'MISMATCH'})")
    return 1 if failed else 0


def max_rel_err(ours, theirs):
    scale = float(ours.abs().max()) or 1.0
    return float((ours - theirs).abs().max()) / scale


def verify(folder, cfg, tensors, dump, chunk):
    """Replays seqrun-bench-decode --dump's tokens; returns {decode_max_rel_err, prefill_max_rel_err, ...}."""
    def ids(name):
        path = os.path.join(dump, name)
        return torch.from_numpy(np.load(path).astype(np.int64))[None] if os.path.exists(path) else None

    def logits(name):
        return torch.from_numpy(np.load(os.path.join(dump, name)).astype(np.float32))

    context, steps, prompt = ids("decode_context_ids.npy"), ids("decode_step_ids.npy"), ids("prefill_ids.npy")
    lengths = [context.shape[1] + steps.shape[1] if context is not None else 0, prompt.shape[1] if prompt is not None else 0]
    decoder = make_decoder(cfg, tensors, max(lengths) + 1)
    result = {"runtime": "pytorch", "model": folder, "dump": dump}
    if context is not None:
        prefill(decoder, context, chunk, False)
        for t in range(steps.shape[1]):
            out = decoder.forward(steps[:, t:t + 1])
        result["decode_tokens"] = lengths[0]
        result["decode_max_rel_err"] = max_rel_err(out, logits("decode_logits.npy"))
    if prompt is not None:
        decoder.reset()
        out = prefill(decoder, prompt, chunk, False)
        result["prefill_tokens"] = lengths[1]
        result["prefill_max_rel_err"] = max_rel_err(out, logits("prefill_logits.npy"))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--contexts", default="1024,4096,16384")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warmup-steps", type=int, default=4)
    parser.add_argument("--prefill", type=int, default=512, help="prompt tokens of the timed prefill (0 = skip)")
    parser.add_argument("--prefill-repeat", type=int, default=5)
    parser.add_argument("--prefill-chunk", type=int, default=512, help="prompt tokens per forward (0 = all)")
    parser.add_argument("--prefill-logits", choices=("all", "last"), default="all")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="store_true", help="compare with the folder's logits.npy and exit")
    parser.add_argument("--verify", default=None, metavar="DIR",
                        help="compare with the logits seqrun-bench-decode --dump DIR wrote and exit")
    args = parser.parse_args()
    try:
        contexts = [int(c) for c in args.contexts.split(",") if c]
    except ValueError:
        parser.error(f"--contexts '{args.contexts}': comma-separated token counts")
    if (not contexts or min(contexts) < 1 or args.steps < 1 or args.repeat < 1 or args.warmup_steps < 0
            or args.prefill < 0 or args.prefill_repeat < 1 or args.prefill_chunk < 0 or args.threads < 1):
        parser.error("contexts, --steps, --repeat, --prefill-repeat, --threads must be >= 1; the others >= 0")
    torch.set_num_threads(args.threads)

    with torch.inference_mode():
        start = time.perf_counter()
        cfg, tensors = load_checkpoint(args.folder)
        if args.check:
            return check(args.folder, cfg, tensors)
        if args.verify:
            print(json.dumps(verify(args.folder, cfg, tensors, args.verify, args.prefill_chunk), indent=2))
            return 0
        max_context = max(max(contexts) + max(args.warmup_steps, args.steps), args.prefill) + 1
        decoder = make_decoder(cfg, tensors, max_context)
        load_ms = (time.perf_counter() - start) * 1e3
        vocab = cfg["vocab_size"]
        gen = torch.Generator().manual_seed(args.seed)
        decode = [bench_context(decoder, args, c, vocab, gen) for c in contexts]
        prefill_result = bench_prefill(decoder, args, vocab, gen) if args.prefill > 0 else None
    result = {"runtime": "pytorch", "version": torch.__version__, "model": args.folder,
              "architecture": (cfg.get("architectures") or ["?"])[0], "vocab": vocab, "threads": args.threads,
              "prefill_chunk": args.prefill_chunk, "steps": args.steps, "repeat": args.repeat,
              "warmup_steps": args.warmup_steps, "load_ms": load_ms, "decode": decode, "prefill": prefill_result,
              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
