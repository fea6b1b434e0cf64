#!/usr/bin/env python3
"""Whole-model GPU benchmark: GPT-2-small-shaped and Mamba-130m-shaped language models, seqrun vs eager PyTorch.

Two subcommands, both run by tools/gpu/check.sh on the device machine:

  bench_models.py torch OUT     builds both models with random weights from fixed seeds (GPT-2 small: d 768,
                                12 layers, 12 heads, vocab 50257, 1024 positions; Mamba-130m: d 768, 24 layers,
                                d_state 16, expand 2, conv 4, dt_rank 48, vocab 50280), writes them as Hugging
                                Face checkpoints (OUT/<model>/config.json + model.safetensors, f32), writes
                                input_ids.npy [1, 128] with PyTorch's logits in f32 and bf16, and times eager
                                PyTorch: prefill of [1, --prefill] tokens, and decode of --decode tokens after a
                                --prompt-token prompt with a KV cache (GPT-2) or the recurrent state (Mamba).
  bench_models.py seqrun OUT --bin DIR [--libs PATH] [--preload LIB]
                                converts each checkpoint (seqrun-export hf), checks `seqrun run --backend cuda`
                                on input_ids.npy against PyTorch's f32 logits (f32 and --dtype bf16), times
                                `seqrun bench --backend cuda` on the same prefill shape, and decode with
                                seqrun-gpu-decode-bench (StatefulSession: the derived step graph with KV caches /
                                SSM state; --prompt tokens, then --decode greedy steps).

Every measurement prints one line, e.g.
  RESULT torch-model model=gpt2-small dtype=bf16 prefill_ms=4.1 prefill_tok_s=124878 decode_tok_s=512.3
  RESULT seqrun-model model=gpt2-small dtype=bf16 prefill_ms=6.0 prefill_tok_s=85333 step_ms=2.2
         decode_tok_s=454.5 stateful=1 error=0.011 torch_bf16_error=0.008 check=ok
Timing: CUDA events (PyTorch; TF32 off, so f32 is exact f32 like seqrun's default), median of --repeat runs
after --warmup; seqrun's numbers are `seqrun bench`'s medians (host clock around Session::run, which ends with
the copy of the logits to the host). Errors are max|a - b| / max|b| against PyTorch's f32 logits; bf16 passes
when within max(3 x PyTorch's own bf16 error, 2e-2), f32 within 1e-3.
"""
import argparse
import json
import math
import os
import statistics
import struct
import subprocess
import sys
import time

MODELS = ("gpt2-small", "mamba-130m")
GPT2 = {"vocab": 50257, "positions": 1024, "width": 768, "layers": 12, "heads": 12}
MAMBA = {"vocab": 50280, "width": 768, "layers": 24, "state": 16, "expand": 2, "conv": 4, "dt_rank": 48}
CHECK_TOKENS = 128
DEVICE = "cuda"  # --device cpu with --tiny: a CPU smoke test of the models and the checkpoint writer


# ---- checkpoints ----------------------------------------------------------------------------------------

def write_safetensors(path, tensors):
    """tensors: name -> float32 CPU torch tensor. The safetensors layout: u64 LE header length, JSON header
    (padded with spaces to 8 bytes), then the raw little-endian data in header order."""
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        data = t.detach().to("cpu").contiguous().float().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def gpt2_weights(torch, seed):
    """HF GPT2LMHeadModel names (Conv1D weights stored [in, out]); N(0, 0.02) like GPT-2's init, the residual
    projections scaled by 1/sqrt(2 * layers), LayerNorms at 1 / 0."""
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    d, L = GPT2["width"], GPT2["layers"]

    def normal(*shape, std=0.02):
        return torch.randn(*shape, device=DEVICE, generator=g) * std

    w = {"transformer.wte.weight": normal(GPT2["vocab"], d), "transformer.wpe.weight": normal(GPT2["positions"], d, std=0.01)}
    for i in range(L):
        p = f"transformer.h.{i}."
        w[p + "ln_1.weight"] = torch.ones(d, device=DEVICE)
        w[p + "ln_1.bias"] = torch.zeros(d, device=DEVICE)
        w[p + "attn.c_attn.weight"] = normal(d, 3 * d)
        w[p + "attn.c_attn.bias"] = normal(3 * d, std=0.01)
        w[p + "attn.c_proj.weight"] = normal(d, d, std=0.02 / math.sqrt(2 * L))
        w[p + "attn.c_proj.bias"] = torch.zeros(d, device=DEVICE)
        w[p + "ln_2.weight"] = torch.ones(d, device=DEVICE)
        w[p + "ln_2.bias"] = torch.zeros(d, device=DEVICE)
        w[p + "mlp.c_fc.weight"] = normal(d, 4 * d)
        w[p + "mlp.c_fc.bias"] = normal(4 * d, std=0.01)
        w[p + "mlp.c_proj.weight"] = normal(4 * d, d, std=0.02 / math.sqrt(2 * L))
        w[p + "mlp.c_proj.bias"] = torch.zeros(d, device=DEVICE)
    w["transformer.ln_f.weight"] = torch.ones(d, device=DEVICE)
    w["transformer.ln_f.bias"] = torch.zeros(d, device=DEVICE)
    config = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "activation_function": "gelu_new",
              "n_embd": d, "n_head": GPT2["heads"], "n_layer": L, "n_positions": GPT2["positions"], "n_inner": None,
              "vocab_size": GPT2["vocab"], "layer_norm_epsilon": 1e-5, "scale_attn_weights": True,
              "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False,
              "tie_word_embeddings": True, "bos_token_id": 50256, "eos_token_id": 50256, "torch_dtype": "float32"}
    return w, config


def mamba_weights(torch, seed):
    """HF MambaForCausalLM names; Mamba's own init: A_log = log(1..N), D = 1, dt_proj's bias the inverse
    softplus of dt ~ logUniform(1e-3, 0.1), projections N(0, 0.02), RMSNorm weights 1, tied embeddings."""
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    d, L, N, K, R = MAMBA["width"], MAMBA["layers"], MAMBA["state"], MAMBA["conv"], MAMBA["dt_rank"]
    inner = MAMBA["expand"] * d

    def normal(*shape, std=0.02):
        return torch.randn(*shape, device=DEVICE, generator=g) * std

    def uniform(*shape, lo, hi):
        return torch.rand(*shape, device=DEVICE, generator=g) * (hi - lo) + lo

    w = {"backbone.embeddings.weight": normal(MAMBA["vocab"], d)}
    for i in range(L):
        p = f"backbone.layers.{i}."
        dt = torch.exp(uniform(inner, lo=math.log(1e-3), hi=math.log(0.1)))
        w[p + "norm.weight"] = torch.ones(d, device=DEVICE)
        w[p + "mixer.in_proj.weight"] = normal(2 * inner, d)
        w[p + "mixer.conv1d.weight"] = uniform(inner, 1, K, lo=-1 / math.sqrt(K), hi=1 / math.sqrt(K))
        w[p + "mixer.conv1d.bias"] = uniform(inner, lo=-1 / math.sqrt(K), hi=1 / math.sqrt(K))
        w[p + "mixer.x_proj.weight"] = normal(R + 2 * N, inner)
        w[p + "mixer.dt_proj.weight"] = uniform(inner, R, lo=-R ** -0.5, hi=R ** -0.5)
        w[p + "mixer.dt_proj.bias"] = dt + torch.log(-torch.expm1(-dt))
        w[p + "mixer.A_log"] = torch.log(torch.arange(1, N + 1, device=DEVICE, dtype=torch.float32)).repeat(inner, 1)
        w[p + "mixer.D"] = torch.ones(inner, device=DEVICE)
        w[p + "mixer.out_proj.weight"] = normal(d, inner, std=0.02 / math.sqrt(L))
    w["backbone.norm_f.weight"] = torch.ones(d, device=DEVICE)
    config = {"architectures": ["MambaForCausalLM"], "model_type": "mamba", "hidden_size": d, "state_size": N,
              "num_hidden_layers": L, "vocab_size": MAMBA["vocab"], "expand": MAMBA["expand"], "conv_kernel": K,
              "time_step_rank": R, "use_bias": False, "use_conv_bias": True, "hidden_act": "silu",
              "layer_norm_epsilon": 1e-5, "residual_in_fp32": True, "tie_word_embeddings": True,
              "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0, "torch_dtype": "float32"}
    return w, config


# ---- eager PyTorch models --------------------------------------------------------------------------------

def attention(torch, q, k, v, causal):
    F = torch.nn.functional
    if hasattr(F, "scaled_dot_product_attention"):  # PyTorch 2.x: the fused kernels eager code uses
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if causal:
        mask = torch.ones(q.shape[2], k.shape[2], dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1) @ v


def gpt2_forward(torch, w, ids, cache=None):
    """logits [B, T, V] and the new cache (list of (k, v) per layer, [B, H, S, hd]); `cache` None = prefill."""
    F = torch.nn.functional
    d, H = GPT2["width"], GPT2["heads"]
    B, T = ids.shape
    past = 0 if cache is None else cache[0][0].shape[2]
    x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][past:past + T]
    new_cache = []
    for i in range(GPT2["layers"]):
        p = f"transformer.h.{i}."
        h = F.layer_norm(x, (d,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], 1e-5)
        qkv = torch.addmm(w[p + "attn.c_attn.bias"], h.view(B * T, d), w[p + "attn.c_attn.weight"]).view(B, T, 3, H, d // H)
        q, k, v = (qkv[:, :, j].transpose(1, 2) for j in range(3))
        if cache is not None:
            k = torch.cat([cache[i][0], k], dim=2)
            v = torch.cat([cache[i][1], v], dim=2)
        new_cache.append((k, v))
        a = attention(torch, q, k, v, causal=cache is None and T > 1)
        a = a.transpose(1, 2).reshape(B * T, d)
        x = x + torch.addmm(w[p + "attn.c_proj.bias"], a, w[p + "attn.c_proj.weight"]).view(B, T, d)
        h = F.layer_norm(x, (d,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], 1e-5)
        h = F.gelu(torch.addmm(w[p + "mlp.c_fc.bias"], h.view(B * T, d), w[p + "mlp.c_fc.weight"]), approximate="tanh")
        x = x + torch.addmm(w[p + "mlp.c_proj.bias"], h, w[p + "mlp.c_proj.weight"]).view(B, T, d)
    x = F.layer_norm(x, (d,), w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], 1e-5)
    return x @ w["transformer.wte.weight"].t(), new_cache


def rms_norm(torch, x, weight):
    return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-5).to(x.dtype) * weight


def mamba_forward(torch, w, ids, state=None):
    """logits and the new state (per layer: conv window [B, I, K-1], ssm state [B, I, N]); the sequential
    scan of HF's slow path (one step per token), so prefill is eager PyTorch's reference speed."""
    F = torch.nn.functional
    d, N, K, R = MAMBA["width"], MAMBA["state"], MAMBA["conv"], MAMBA["dt_rank"]
    inner = MAMBA["expand"] * d
    B, T = ids.shape
    x = w["backbone.embeddings.weight"][ids]
    new_state = []
    for i in range(MAMBA["layers"]):
        p = f"backbone.layers.{i}.mixer."
        h = rms_norm(torch, x, w[f"backbone.layers.{i}.norm.weight"])
        xz = h @ w[p + "in_proj.weight"].t()
        u, z = xz[..., :inner].transpose(1, 2), xz[..., inner:]
        past_conv = state[i][0] if state is not None else u.new_zeros(B, inner, K - 1)
        window = torch.cat([past_conv, u], dim=2)
        u = F.silu(F.conv1d(window, w[p + "conv1d.weight"], w[p + "conv1d.bias"], groups=inner))  # [B, I, T]
        conv_state = window[:, :, -(K - 1):]
        dbc = u.transpose(1, 2) @ w[p + "x_proj.weight"].t()
        dt = F.softplus(dbc[..., :R] @ w[p + "dt_proj.weight"].t() + w[p + "dt_proj.bias"]).float()  # [B, T, I]
        # The scan in f32 whatever the weights' dtype (as Mamba's own kernels do).
        Bm, Cm, uf = dbc[..., R:R + N].float(), dbc[..., R + N:].float(), u.float()
        A = -torch.exp(w[p + "A_log"].float())
        s = state[i][1] if state is not None else uf.new_zeros(B, inner, N)
        ys = []
        for t in range(T):
            dA = torch.exp(dt[:, t, :, None] * A)
            s = dA * s + dt[:, t, :, None] * Bm[:, t, None, :] * uf[:, :, t, None]
            ys.append((s @ Cm[:, t, :, None]).squeeze(-1))
        y = torch.stack(ys, dim=1) + uf.transpose(1, 2) * w[p + "D"].float()
        y = (y * F.silu(z.float())).to(x.dtype)
        x = x + y @ w[p + "out_proj.weight"].t()
        new_state.append((conv_state, s))
    x = rms_norm(torch, x, w["backbone.norm_f.weight"])
    return x @ w["backbone.embeddings.weight"].t(), new_state


def forward_of(name):
    return gpt2_forward if name == "gpt2-small" else mamba_forward


def time_ms(torch, fn, warmup, repeat):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def run_torch(args):
    import numpy as np
    import torch

    if DEVICE == "cuda" and not torch.cuda.is_available():
        print("bench_models.py: error: no CUDA device for PyTorch", file=sys.stderr)
        return 1
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0) if DEVICE == 'cuda' else 'cpu'}", flush=True)
    for name in MODELS:
        t0 = time.time()
        weights, config = (gpt2_weights if name == "gpt2-small" else mamba_weights)(torch, 1234)
        folder = os.path.join(args.out, name)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f, indent=1)
        write_safetensors(os.path.join(folder, "model.safetensors"), weights)
        forward = forward_of(name)
        gen = torch.Generator(device=DEVICE).manual_seed(99)
        vocab = config["vocab_size"]
        ids = torch.randint(0, vocab, (1, CHECK_TOKENS), device=DEVICE, generator=gen)
        np.save(os.path.join(folder, "input_ids.npy"), ids.cpu().numpy().astype(np.int64))
        with torch.inference_mode():
            ref = forward(torch, weights, ids)[0].float()
            np.save(os.path.join(folder, "logits_f32.npy"), ref.cpu().numpy())
            low = {k: v.to(torch.bfloat16) if not k.endswith("A_log") else v for k, v in weights.items()}
            got = forward(torch, low, ids)[0].float()
            bf16_error = (got - ref).abs().max().item() / ref.abs().max().item()
        with open(os.path.join(folder, "torch_bf16_error.txt"), "w") as f:
            f.write(f"{bf16_error:.6g}\n")
        print(f"{name}: checkpoint written in {time.time() - t0:.1f}s; PyTorch bf16 logits error {bf16_error:.3g}",
              flush=True)

        if args.check_only:
            with torch.inference_mode():  # decoding with the cache / state reproduces the full forward
                full = forward(torch, weights, ids)[0]
                logits, cache = forward(torch, weights, ids[:, :CHECK_TOKENS - 3])
                steps = [logits[:, -1]]
                for t in range(CHECK_TOKENS - 3, CHECK_TOKENS):
                    logits, cache = forward(torch, weights, ids[:, t:t + 1], cache)
                    steps.append(logits[:, -1])
                err = max((full[:, t - 1] - steps[t - CHECK_TOKENS + 3]).abs().max().item()
                          for t in range(CHECK_TOKENS - 3, CHECK_TOKENS + 1))
            print(f"{name}: decode steps vs full forward: max abs difference {err:.3g}", flush=True)
            continue
        prompt = torch.randint(0, vocab, (1, args.prompt), device=DEVICE, generator=gen)
        prefill_ids = torch.randint(0, vocab, (1, args.prefill), device=DEVICE, generator=gen)
        slow = name == "mamba-130m"  # the token-serial eager scan: fewer prefill repetitions
        for dtype_name, dtype in (("f32", torch.float32), ("bf16", torch.bfloat16)):
            w = {k: (v.to(dtype) if not k.endswith("A_log") else v) for k, v in weights.items()}
            with torch.inference_mode():
                prefill_ms = time_ms(torch, lambda: forward(torch, w, prefill_ids), 1 if slow else args.warmup,
                                     3 if slow else args.repeat)

                def decode():
                    logits, cache = forward(torch, w, prompt)
                    token = logits[:, -1:].argmax(-1)
                    start = torch.cuda.Event(enable_timing=True)
                    end = torch.cuda.Event(enable_timing=True)
                    start.record()
                    for _ in range(args.decode):
                        logits, cache = forward(torch, w, token, cache)
                        token = logits[:, -1:].argmax(-1)
                    end.record()
                    torch.cuda.synchronize()
                    return start.elapsed_time(end) / args.decode

                decode()  # warm-up
                step_ms = statistics.median(decode() for _ in range(3))
            print(f"RESULT torch-model model={name} dtype={dtype_name} prefill_ms={prefill_ms:.4f} "
                  f"prefill_tok_s={args.prefill / prefill_ms * 1e3:.1f} step_ms={step_ms:.4f} "
                  f"decode_tok_s={1e3 / step_ms:.1f}", flush=True)
        del weights
        torch.cuda.empty_cache()
    return 0


# ---- seqrun --------------------------------------------------------------------------------------------

def run(cmd, env, timeout):
    result = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        print(f"command failed ({result.returncode}): {' '.join(cmd)}\n{result.stdout[-2000:]}{result.stderr[-2000:]}",
              flush=True)
    return result


def run_seqrun(args):
    import numpy as np

    env = dict(os.environ)
    if args.libs:
        env["LD_LIBRARY_PATH"] = args.libs
    if args.preload:
        env["LD_PRELOAD"] = args.preload
    seqrun = os.path.join(args.bin, "seqrun")
    export = os.path.join(args.bin, "seqrun-export")
    decode_bench = os.path.join(args.bin, "seqrun-gpu-decode-bench")
    failed = 0
    for name in MODELS:
        folder = os.path.join(args.out, name)
        model = os.path.join(folder, "model.seqrun")
        t0 = time.time()
        if run([export, "hf", folder, "-o", model], env, 300).returncode != 0:
            failed += 1
            continue
        print(f"{name}: exported in {time.time() - t0:.1f}s", flush=True)
        ref = np.load(os.path.join(folder, "logits_f32.npy"))
        with open(os.path.join(folder, "torch_bf16_error.txt")) as f:
            torch_bf16_error = float(f.read())
        for dtype in args.dtypes.split(","):
            out_dir = os.path.join(folder, "out_" + dtype)
            error = float("nan")
            r = run([seqrun, "--backend", args.backend, "run", model, "--dtype", dtype, "-i",
                     "input_ids=" + os.path.join(folder, "input_ids.npy"), "-o", out_dir], env, 300)
            if r.returncode == 0:
                got = np.load(os.path.join(out_dir, "logits.npy")).astype(np.float64)
                error = float(np.abs(got - ref).max() / np.abs(ref).max())
            bound = 1e-3 if dtype == "f32" else max(3 * torch_bf16_error, 2e-2)
            check = "ok" if error <= bound else "FAIL"
            r = run([seqrun, "--backend", args.backend, "bench", model, "--dtype", dtype, "--random-inputs",
                     "--input-shape", f"input_ids=1x{args.prefill}", "--warmup", str(args.warmup), "--repeat",
                     str(args.repeat), "--json"], env, 300)
            prefill = json.loads(r.stdout[r.stdout.index("{"):])["median_ms"] if r.returncode == 0 else None
            # Decode through StatefulSession (the derived step graph: KV caches / SSM state).
            r = run([decode_bench, model, "--backend", args.backend, "--dtype", dtype, "--prompt", str(args.prompt),
                     "--steps", str(args.decode), "--repeat", "3"], env, 300)
            print(r.stdout.strip(), flush=True)
            step, stateful = None, "-"
            for line in r.stdout.splitlines() if r.returncode == 0 else []:
                if line.startswith("RESULT seqrun-decode "):
                    fields = dict(kv.split("=", 1) for kv in line.split()[2:])
                    step, stateful = float(fields["step_ms"]), fields["stateful"]
            fmt = lambda v, f: "-" if v is None else f.format(v)  # noqa: E731
            print(f"RESULT seqrun-model model={name} dtype={dtype} prefill_ms={fmt(prefill, '{:.4f}')} "
                  f"prefill_tok_s={fmt(prefill and args.prefill / prefill * 1e3, '{:.1f}')} "
                  f"step_ms={fmt(step, '{:.4f}')} decode_tok_s={fmt(step and 1e3 / step, '{:.1f}')} "
                  f"stateful={stateful} error={error:.3g} torch_bf16_error={torch_bf16_error:.3g} check={check}",
                  flush=True)
            if check != "ok" or prefill is None or step is None:
                failed += 1
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("torch", "seqrun"))
    parser.add_argument("out", help="folder for the checkpoints, inputs and reference logits")
    parser.add_argument("--prefill", type=int, default=512, help="prefill tokens")
    parser.add_argument("--prompt", type=int, default=32, help="prompt tokens before decoding")
    parser.add_argument("--decode", type=int, default=64, help="decoded tokens")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--bin", default="", help="seqrun: the folder holding seqrun, seqrun-export and "
                        "seqrun-gpu-decode-bench")
    parser.add_argument("--libs", default="", help="seqrun: LD_LIBRARY_PATH for the seqrun binaries")
    parser.add_argument("--preload", default="", help="seqrun: LD_PRELOAD for the seqrun binaries")
    parser.add_argument("--backend", default="cuda", help="seqrun: the backend (cpu for a smoke test)")
    parser.add_argument("--dtypes", default="f32,bf16", help="seqrun: the --dtype values to run")
    parser.add_argument("--device", default="cuda", help="torch: cuda, or cpu for a smoke test (with --tiny)")
    parser.add_argument("--tiny", action="store_true", help="2-layer models with a small vocabulary (smoke tests)")
    parser.add_argument("--check-only", action="store_true", help="torch: write checkpoints and logits, no timing")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    if args.tiny:
        GPT2.update(vocab=300, positions=160, width=64, layers=2, heads=4)
        MAMBA.update(vocab=300, width=32, layers=2, state=8, dt_rank=2)
    os.makedirs(args.out, exist_ok=True)
    if args.what == "torch":
        return run_torch(args)
    if not args.bin:
        parser.error("seqrun needs --bin")
    return run_seqrun(args)


if __name__ == "__main__":
    sys.exit(main())
