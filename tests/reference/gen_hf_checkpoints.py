#!/usr/bin/python3
# Regenerates tests/data/hf/*: tiny randomly initialised checkpoints in the Hugging Face layout
# (config.json + *.safetensors, sharded with model.safetensors.index.json) and in the original
# state-spaces Mamba layout, each with reference logits for a fixed input_ids.
#
# Run with Debian's interpreter (torch 1.13, numpy; no `transformers`, no `safetensors` package needed):
#     /usr/bin/python3 tests/reference/gen_hf_checkpoints.py
# Fixed seeds: a rerun rewrites identical files. tests/unit/test_hf_import.cpp loads every folder with
# seqrun's builders (models/builders.h) and compares its logits with logits.npy.
#
# Each architecture is written out in plain PyTorch following the Hugging Face modeling code's semantics:
#   gpt2   GPT2LMHeadModel: learned positions, pre-LN blocks, Conv1D weights stored [in, out], attention
#          scores / sqrt(head_dim), causal mask by where(tril, w, finfo.min), gelu_new (tanh), tied lm_head.
#   llama  LlamaForCausalLM: RMSNorm (eps from config), rotate_half RoPE with rope_theta (and the llama3
#          rope_scaling rule), SwiGLU MLP, grouped-query attention (repeat_kv), additive causal mask of
#          finfo.min, softmax in f32, lm_head tied (tie_word_embeddings) or separate.
#   mamba  MambaForCausalLM slow path: backbone.embeddings, per layer RMSNorm + MambaMixer (in_proj ->
#          x, z; depthwise causal conv1d + SiLU; x_proj -> dt, B, C; softplus(dt_proj(dt)); the selective
#          scan h = exp(Δ A) h + Δ B x with A = -exp(A_log); y = C·h + D x; y * SiLU(z); out_proj), norm_f,
#          tied lm_head. The state-spaces layout (mamba_ssm's MambaLMHeadModel) is the same network with
#          other key names (backbone.embedding), config keys d_model / n_layer / ssm_cfg, a vocabulary
#          padded to pad_vocab_size_multiple, and LayerNorm instead of RMSNorm when rms_norm is false.
#
# f16 / bf16 checkpoints: the weights are rounded to the stored dtype first and the reference runs in f32
# on the rounded values, which is what seqrun computes (it converts stored weights to f32 when it builds).
import json
import math
import os
import shutil
import struct

import numpy as np
import torch
import torch.nn.functional as F

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HF_DIR = os.path.join(REPO_ROOT, "tests", "data", "hf")
MAX_FOLDER_BYTES = 300 * 1024

torch.set_num_threads(1)

SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}


# ---------------------------------------------------------------------------------------------------------
# Files

def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()  # numpy has no bf16: the raw 16-bit patterns
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata=None):
    """tensors: ordered dict name -> torch tensor. Layout: u64 LE header length, JSON header padded with
    spaces to a multiple of 8, then the raw little-endian bytes in the order given."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    blobs = []
    offset = 0
    for name, t in tensors.items():
        data = tensor_bytes(t)
        header[name] = {"dtype": SAFETENSORS_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    return offset


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def stored(params, dtype):
    """Rounds every weight to the checkpoint dtype; returns (stored tensors, their f32 values)."""
    kept = {name: p.to(dtype) for name, p in params.items()}
    return kept, {name: p.to(torch.float32) for name, p in kept.items()}


def as_f64(params):
    return {name: p.double() for name, p in params.items()}


def write_case(name, config, stored_params, input_ids, logits, conditioning, shards=None):
    folder = os.path.join(HF_DIR, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    write_json(os.path.join(folder, "config.json"), config)
    if shards is None:
        write_safetensors(os.path.join(folder, "model.safetensors"), stored_params, {"format": "pt"})
    else:
        weight_map = {}
        total = 0
        for i, names in enumerate(shards):
            file = "model-%05d-of-%05d.safetensors" % (i + 1, len(shards))
            total += write_safetensors(os.path.join(folder, file), {n: stored_params[n] for n in names},
                                       {"format": "pt"})
            for n in names:
                weight_map[n] = file
        assert sorted(weight_map) == sorted(stored_params)
        write_json(os.path.join(folder, "model.safetensors.index.json"),
                   {"metadata": {"total_size": total}, "weight_map": weight_map})
    np.save(os.path.join(folder, "input_ids.npy"), input_ids.numpy().astype(np.int64))
    np.save(os.path.join(folder, "logits.npy"), logits.numpy().astype(np.float32))
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    assert size < MAX_FOLDER_BYTES, (name, size)
    assert np.all(np.isfinite(logits.numpy()))
    print("%-22s %7d bytes  logits %s  max |logit| %6.3f  f32 vs f64 %.1e"
          % (name, size, tuple(logits.shape), float(logits.abs().max()), conditioning))


def check_conditioning(name, logits, forward_f64):
    """The same forward pass in f64 must agree with the f32 logits to 1e-5 (scaled like the C++ test:
    |a - b| / max(1, |b|)), so that the test's 1e-4 bound measures seqrun, not float32 noise."""
    with torch.no_grad():
        exact = forward_f64()
    err = float(((logits.double() - exact).abs() / exact.abs().clamp(min=1.0)).max())
    assert err < 1e-5, (name, err)
    return err


def randn(gen, *shape, scale=1.0):
    return torch.randn(*shape, generator=gen) * scale


def linear_weight(gen, out_features, in_features):
    return randn(gen, out_features, in_features, scale=1.0 / math.sqrt(in_features))


def near_one(gen, n):
    return 1.0 + randn(gen, n, scale=0.1)


# ---------------------------------------------------------------------------------------------------------
# GPT-2 (GPT2LMHeadModel)

def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gpt2_params(cfg, gen):
    d, vocab, inner = cfg["n_embd"], cfg["vocab_size"], 4 * cfg["n_embd"]
    p = {"transformer.wte.weight": randn(gen, vocab, d),
         "transformer.wpe.weight": randn(gen, cfg["n_positions"], d, scale=0.5)}
    for i in range(cfg["n_layer"]):
        pre = "transformer.h.%d." % i
        # Conv1D stores [in, out]: y = x @ W + b.
        p[pre + "ln_1.weight"] = near_one(gen, d)
        p[pre + "ln_1.bias"] = randn(gen, d, scale=0.1)
        p[pre + "attn.c_attn.weight"] = linear_weight(gen, 3 * d, d).t().contiguous()
        p[pre + "attn.c_attn.bias"] = randn(gen, 3 * d, scale=0.1)
        p[pre + "attn.c_proj.weight"] = linear_weight(gen, d, d).t().contiguous()
        p[pre + "attn.c_proj.bias"] = randn(gen, d, scale=0.1)
        p[pre + "ln_2.weight"] = near_one(gen, d)
        p[pre + "ln_2.bias"] = randn(gen, d, scale=0.1)
        p[pre + "mlp.c_fc.weight"] = linear_weight(gen, inner, d).t().contiguous()
        p[pre + "mlp.c_fc.bias"] = randn(gen, inner, scale=0.1)
        p[pre + "mlp.c_proj.weight"] = linear_weight(gen, d, inner).t().contiguous()
        p[pre + "mlp.c_proj.bias"] = randn(gen, d, scale=0.1)
    p["transformer.ln_f.weight"] = near_one(gen, d)
    p["transformer.ln_f.bias"] = randn(gen, d, scale=0.1)
    return p


def gpt2_forward(cfg, p, ids):
    batch, seq = ids.shape
    d, heads = cfg["n_embd"], cfg["n_head"]
    hd = d // heads
    eps = cfg["layer_norm_epsilon"]
    h = p["transformer.wte.weight"][ids] + p["transformer.wpe.weight"][torch.arange(seq)]
    causal = torch.tril(torch.ones(seq, seq, dtype=torch.bool))
    mask_value = torch.finfo(torch.float32).min
    dtype = p["transformer.wte.weight"].dtype
    for i in range(cfg["n_layer"]):
        pre = "transformer.h.%d." % i
        x = F.layer_norm(h, (d,), p[pre + "ln_1.weight"], p[pre + "ln_1.bias"], eps)
        qkv = torch.addmm(p[pre + "attn.c_attn.bias"], x.view(-1, d), p[pre + "attn.c_attn.weight"])
        q, k, v = qkv.view(batch, seq, 3 * d).split(d, dim=2)
        q, k, v = (t.view(batch, seq, heads, hd).permute(0, 2, 1, 3) for t in (q, k, v))
        w = torch.matmul(q, k.transpose(-1, -2)) / torch.full([], hd ** 0.5, dtype=dtype)
        w = torch.where(causal, w, torch.full([], mask_value, dtype=dtype))
        w = torch.softmax(w, dim=-1)
        a = torch.matmul(w, v).permute(0, 2, 1, 3).contiguous().view(batch, seq, d)
        a = torch.addmm(p[pre + "attn.c_proj.bias"], a.view(-1, d), p[pre + "attn.c_proj.weight"])
        h = h + a.view(batch, seq, d)
        x = F.layer_norm(h, (d,), p[pre + "ln_2.weight"], p[pre + "ln_2.bias"], eps)
        m = gelu_new(torch.addmm(p[pre + "mlp.c_fc.bias"], x.view(-1, d), p[pre + "mlp.c_fc.weight"]))
        m = torch.addmm(p[pre + "mlp.c_proj.bias"], m, p[pre + "mlp.c_proj.weight"])
        h = h + m.view(batch, seq, d)
    h = F.layer_norm(h, (d,), p["transformer.ln_f.weight"], p["transformer.ln_f.bias"], eps)
    return torch.matmul(h, p["transformer.wte.weight"].t())  # tied lm_head


def make_gpt2(gen):
    cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": 96, "n_positions": 32,
           "n_embd": 32, "n_layer": 2, "n_head": 4, "n_inner": None, "activation_function": "gelu_new",
           "layer_norm_epsilon": 1e-5, "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
           "reorder_and_upcast_attn": False, "tie_word_embeddings": True, "bos_token_id": 1,
           "eos_token_id": 2, "torch_dtype": "float32", "initializer_range": 0.02}
    params = gpt2_params(cfg, gen)
    ids = torch.randint(0, cfg["vocab_size"], (2, 9), generator=gen)
    kept, f32 = stored(params, torch.float32)
    with torch.no_grad():
        logits = gpt2_forward(cfg, f32, ids)
    cond = check_conditioning("gpt2", logits, lambda: gpt2_forward(cfg, as_f64(f32), ids))
    write_case("gpt2_fp32", cfg, kept, ids, logits, cond)


# ---------------------------------------------------------------------------------------------------------
# Llama (LlamaForCausalLM)

def rms_norm(x, w, eps):
    x32 = x if x.dtype == torch.float64 else x.to(torch.float32)  # f64 only for the conditioning check
    x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return w * x32


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def llama_inv_freq(cfg, hd):
    base = cfg["rope_theta"]
    inv_freq = 1.0 / (base ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    scaling = cfg.get("rope_scaling")
    if scaling is None:
        return inv_freq
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind == "linear":
        return inv_freq / scaling["factor"]
    assert kind == "llama3", kind
    factor = scaling["factor"]
    low_freq_factor = scaling["low_freq_factor"]
    high_freq_factor = scaling["high_freq_factor"]
    old_context_len = scaling["original_max_position_embeddings"]
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium, smoothed, inv_freq_llama)


def llama_params(cfg, gen):
    d, vocab, inter = cfg["hidden_size"], cfg["vocab_size"], cfg["intermediate_size"]
    heads, kv_heads = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = d // heads
    p = {"model.embed_tokens.weight": randn(gen, vocab, d)}
    for i in range(cfg["num_hidden_layers"]):
        pre = "model.layers.%d." % i
        p[pre + "input_layernorm.weight"] = near_one(gen, d)
        p[pre + "self_attn.q_proj.weight"] = linear_weight(gen, heads * hd, d) * 2.0
        p[pre + "self_attn.k_proj.weight"] = linear_weight(gen, kv_heads * hd, d) * 2.0
        p[pre + "self_attn.v_proj.weight"] = linear_weight(gen, kv_heads * hd, d)
        p[pre + "self_attn.o_proj.weight"] = linear_weight(gen, d, heads * hd)
        p[pre + "post_attention_layernorm.weight"] = near_one(gen, d)
        p[pre + "mlp.gate_proj.weight"] = linear_weight(gen, inter, d)
        p[pre + "mlp.up_proj.weight"] = linear_weight(gen, inter, d)
        p[pre + "mlp.down_proj.weight"] = linear_weight(gen, d, inter)
    p["model.norm.weight"] = near_one(gen, d)
    if not cfg["tie_word_embeddings"]:
        p["lm_head.weight"] = linear_weight(gen, vocab, d) * 4.0
    return p


def llama_forward(cfg, p, ids):
    batch, seq = ids.shape
    d = cfg["hidden_size"]
    heads, kv_heads = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = d // heads
    n_rep = heads // kv_heads
    eps = cfg["rms_norm_eps"]
    inv_freq = llama_inv_freq(cfg, hd)
    position_ids = torch.arange(seq)[None, :].expand(batch, -1)
    dtype = p["model.embed_tokens.weight"].dtype
    freqs = (inv_freq[None, :, None].float().expand(batch, -1, 1) @ position_ids[:, None, :].float()).to(dtype)
    emb = torch.cat((freqs.transpose(1, 2), freqs.transpose(1, 2)), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]  # [batch, 1, seq, hd]
    mask = torch.triu(torch.full((seq, seq), torch.finfo(torch.float32).min, dtype=dtype), diagonal=1)[None, None]
    h = p["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        pre = "model.layers.%d." % i
        x = rms_norm(h, p[pre + "input_layernorm.weight"], eps)
        q = F.linear(x, p[pre + "self_attn.q_proj.weight"]).view(batch, seq, -1, hd).transpose(1, 2)
        k = F.linear(x, p[pre + "self_attn.k_proj.weight"]).view(batch, seq, -1, hd).transpose(1, 2)
        v = F.linear(x, p[pre + "self_attn.v_proj.weight"]).view(batch, seq, -1, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # repeat_kv: [b, kv, s, hd] -> [b, kv * n_rep, s, hd], each kv head repeated n_rep times in place.
        k = k[:, :, None].expand(batch, kv_heads, n_rep, seq, hd).reshape(batch, heads, seq, hd)
        v = v[:, :, None].expand(batch, kv_heads, n_rep, seq, hd).reshape(batch, heads, seq, hd)
        w = torch.matmul(q, k.transpose(2, 3)) * hd ** -0.5 + mask
        w = F.softmax(w, dim=-1, dtype=torch.float64 if w.dtype == torch.float64 else torch.float32)
        a = torch.matmul(w, v).transpose(1, 2).reshape(batch, seq, -1)
        h = h + F.linear(a, p[pre + "self_attn.o_proj.weight"])
        x = rms_norm(h, p[pre + "post_attention_layernorm.weight"], eps)
        m = F.silu(F.linear(x, p[pre + "mlp.gate_proj.weight"])) * F.linear(x, p[pre + "mlp.up_proj.weight"])
        h = h + F.linear(m, p[pre + "mlp.down_proj.weight"])
    h = rms_norm(h, p["model.norm.weight"], eps)
    head = p["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else p["lm_head.weight"]
    return F.linear(h, head)


def llama_config(**overrides):
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 112, "hidden_size": 32,
           "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
           "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "rope_scaling": None,
           "attention_bias": False, "mlp_bias": False, "hidden_act": "silu", "tie_word_embeddings": True,
           "bos_token_id": 1, "eos_token_id": 2, "initializer_range": 0.02}
    cfg.update(overrides)
    return cfg


def make_llama_fp16_sharded(gen):
    cfg = llama_config(torch_dtype="float16")
    params = llama_params(cfg, gen)
    kept, f32 = stored(params, torch.float16)
    ids = torch.randint(0, cfg["vocab_size"], (2, 8), generator=gen)
    with torch.no_grad():
        logits = llama_forward(cfg, f32, ids)
    cond = check_conditioning("llama fp16", logits, lambda: llama_forward(cfg, as_f64(f32), ids))
    first = [n for n in kept if n.startswith("model.embed_tokens") or n.startswith("model.layers.0.")]
    second = [n for n in kept if n not in first]
    write_case("llama_fp16_sharded", cfg, kept, ids, logits, cond, shards=[first, second])


def make_llama_bf16_untied(gen):
    # 6 query heads over 2 kv heads (n_rep 3), rope_theta 500000 with llama3 rope scaling whose wavelength
    # bands put the 4 frequencies of head_dim 8 in all three regimes (kept, smoothed, divided).
    cfg = llama_config(torch_dtype="bfloat16", hidden_size=48, intermediate_size=96, num_attention_heads=6,
                       num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=False,
                       vocab_size=80, bos_token_id=0, eos_token_id=[3, 4],
                       rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0, "original_max_position_embeddings": 512})
    params = llama_params(cfg, gen)
    kept, f32 = stored(params, torch.bfloat16)
    ids = torch.randint(0, cfg["vocab_size"], (1, 11), generator=gen)
    with torch.no_grad():
        logits = llama_forward(cfg, f32, ids)
    cond = check_conditioning("llama bf16", logits, lambda: llama_forward(cfg, as_f64(f32), ids))
    write_case("llama_bf16_untied", cfg, kept, ids, logits, cond)


# ---------------------------------------------------------------------------------------------------------
# Mamba (MambaForCausalLM slow path; mamba_ssm's MambaLMHeadModel for the state-spaces layout)

def mamba_mixer(p, pre, x_in, dims):
    d_inner, d_state, d_conv, dt_rank = dims
    batch, seq, _ = x_in.shape
    projected = F.linear(x_in, p[pre + "in_proj.weight"], p.get(pre + "in_proj.bias")).transpose(1, 2)
    hidden, gate = projected.chunk(2, dim=1)  # [b, d_inner, seq] each
    hidden = F.conv1d(hidden, p[pre + "conv1d.weight"], p.get(pre + "conv1d.bias"), padding=d_conv - 1,
                      groups=d_inner)
    hidden = F.silu(hidden[..., :seq])
    ssm_parameters = F.linear(hidden.transpose(1, 2), p[pre + "x_proj.weight"])
    time_step, B, C = torch.split(ssm_parameters, [dt_rank, d_state, d_state], dim=-1)
    dt = F.linear(time_step, p[pre + "dt_proj.weight"], p[pre + "dt_proj.bias"])
    dt = F.softplus(dt).transpose(1, 2)  # [b, d_inner, seq]
    # (HF upcasts A_log, B and the hidden states with .float(): a no-op for these f32 weights.)
    A = -torch.exp(p[pre + "A_log"])  # [d_inner, d_state]
    discrete_A = torch.exp(A[None, :, None, :] * dt[:, :, :, None])  # [b, d_inner, seq, d_state]
    deltaB_u = dt[:, :, :, None] * B[:, None, :, :] * hidden[:, :, :, None]
    state = torch.zeros(batch, d_inner, d_state, dtype=x_in.dtype)
    outputs = []
    for i in range(seq):
        state = discrete_A[:, :, i, :] * state + deltaB_u[:, :, i, :]
        outputs.append(torch.matmul(state, C[:, i, :].unsqueeze(-1))[:, :, 0])
    y = torch.stack(outputs, dim=-1)  # [b, d_inner, seq]
    y = y + hidden * p[pre + "D"][None, :, None]
    y = y * F.silu(gate)
    return F.linear(y.transpose(1, 2), p[pre + "out_proj.weight"], p.get(pre + "out_proj.bias"))


def mamba_params(gen, names, d_model, d_inner, d_state, d_conv, dt_rank, vocab, n_layer, layer_norm):
    """names: dict of key names (embedding, layer prefix, norm, norm_f)."""
    p = {names["embedding"]: randn(gen, vocab, d_model)}
    for i in range(n_layer):
        pre = names["layer"] % i
        mixer = pre + "mixer."
        p[pre + "norm.weight"] = near_one(gen, d_model)
        if layer_norm:
            p[pre + "norm.bias"] = randn(gen, d_model, scale=0.1)
        p[mixer + "A_log"] = (torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d_inner, 1)
                              + randn(gen, d_inner, d_state, scale=0.1))
        p[mixer + "D"] = near_one(gen, d_inner)
        p[mixer + "conv1d.weight"] = randn(gen, d_inner, 1, d_conv, scale=0.5)
        p[mixer + "conv1d.bias"] = randn(gen, d_inner, scale=0.1)
        p[mixer + "in_proj.weight"] = linear_weight(gen, 2 * d_inner, d_model)
        p[mixer + "x_proj.weight"] = linear_weight(gen, dt_rank + 2 * d_state, d_inner)
        p[mixer + "dt_proj.weight"] = linear_weight(gen, d_inner, dt_rank)
        # Mamba's dt initialisation in spirit: softplus(bias) is a step size in [1e-3, 1e-1].
        dt = torch.exp(torch.rand(d_inner, generator=gen) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
        p[mixer + "dt_proj.bias"] = dt + torch.log(-torch.expm1(-dt))
        p[mixer + "out_proj.weight"] = linear_weight(gen, d_model, d_inner)
    p[names["norm_f"] + ".weight"] = near_one(gen, d_model)
    if layer_norm:
        p[names["norm_f"] + ".bias"] = randn(gen, d_model, scale=0.1)
    return p


def mamba_forward(p, names, ids, dims, eps, layer_norm, n_layer, lm_head):
    d_model = p[names["embedding"]].shape[1]

    def norm(x, prefix):
        if layer_norm:
            return F.layer_norm(x, (d_model,), p[prefix + ".weight"], p[prefix + ".bias"], eps)
        return rms_norm(x, p[prefix + ".weight"], eps)

    h = p[names["embedding"]][ids]
    for i in range(n_layer):
        pre = names["layer"] % i
        h = h + mamba_mixer(p, pre + "mixer.", norm(h, pre + "norm"), dims)
    h = norm(h, names["norm_f"])
    return F.linear(h, p[lm_head])


def make_mamba_hf(gen):
    cfg = {"architectures": ["MambaForCausalLM"], "model_type": "mamba", "vocab_size": 80, "hidden_size": 32,
           "state_size": 8, "num_hidden_layers": 2, "layer_norm_epsilon": 1e-5, "expand": 2,
           "conv_kernel": 4, "use_bias": False, "use_conv_bias": True, "hidden_act": "silu",
           "time_step_rank": "auto", "residual_in_fp32": True, "tie_word_embeddings": True,
           "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0, "torch_dtype": "float32"}
    d_inner = cfg["expand"] * cfg["hidden_size"]
    dt_rank = math.ceil(cfg["hidden_size"] / 16)
    dims = (d_inner, cfg["state_size"], cfg["conv_kernel"], dt_rank)
    names = {"embedding": "backbone.embeddings.weight", "layer": "backbone.layers.%d.", "norm_f": "backbone.norm_f"}
    params = mamba_params(gen, names, cfg["hidden_size"], d_inner, cfg["state_size"], cfg["conv_kernel"], dt_rank,
                          cfg["vocab_size"], cfg["num_hidden_layers"], layer_norm=False)
    kept, f32 = stored(params, torch.float32)
    ids = torch.randint(0, cfg["vocab_size"], (2, 10), generator=gen)
    with torch.no_grad():
        logits = mamba_forward(f32, names, ids, dims, cfg["layer_norm_epsilon"], False, cfg["num_hidden_layers"],
                               names["embedding"])
    cond = check_conditioning("mamba", logits, lambda: mamba_forward(
        as_f64(f32), names, ids, dims, cfg["layer_norm_epsilon"], False, cfg["num_hidden_layers"], names["embedding"]))
    write_case("mamba_fp32", cfg, kept, ids, logits, cond)


def make_mamba_state_spaces(gen):
    # mamba_ssm's config: vocabulary 75 padded to a multiple of 8 (80 rows), LayerNorm (rms_norm false,
    # eps 1e-5), an explicit dt_rank, and lm_head.weight saved next to the embedding it is tied to.
    cfg = {"d_model": 32, "n_layer": 2, "vocab_size": 75, "ssm_cfg": {"d_state": 4, "d_conv": 3, "expand": 2,
                                                                     "dt_rank": 3},
           "rms_norm": False, "residual_in_fp32": True, "fused_add_norm": True, "pad_vocab_size_multiple": 8,
           "tie_embeddings": True}
    vocab = 80
    d_inner = 64
    dims = (d_inner, 4, 3, 3)
    names = {"embedding": "backbone.embedding.weight", "layer": "backbone.layers.%d.", "norm_f": "backbone.norm_f"}
    params = mamba_params(gen, names, 32, d_inner, 4, 3, 3, vocab, 2, layer_norm=True)
    params["lm_head.weight"] = params["backbone.embedding.weight"].clone()
    kept, f32 = stored(params, torch.float32)
    ids = torch.randint(0, cfg["vocab_size"], (2, 6), generator=gen)
    with torch.no_grad():
        logits = mamba_forward(f32, names, ids, dims, 1e-5, True, 2, "lm_head.weight")
    cond = check_conditioning("mamba state-spaces", logits,
                              lambda: mamba_forward(as_f64(f32), names, ids, dims, 1e-5, True, 2, "lm_head.weight"))
    write_case("mamba_state_spaces", cfg, kept, ids, logits, cond)


def main():
    make_gpt2(torch.Generator().manual_seed(8100))
    make_llama_fp16_sharded(torch.Generator().manual_seed(8200))
    make_llama_bf16_untied(torch.Generator().manual_seed(8300))
    make_mamba_hf(torch.Generator().manual_seed(8400))
    make_mamba_state_spaces(torch.Generator().manual_seed(8500))


if __name__ == "__main__":
    main()
