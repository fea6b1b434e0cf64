#!/usr/bin/python3
"""Writes the two HF-layout checkpoints of the decode benchmark (tools/bench/decode/README.md): config.json +
model.safetensors, f32, random weights from fixed seeds, into OUT (default /tmp/seqrun-bench-decode):

  mamba-130m-shaped/  MambaForCausalLM: d_model 768, 24 layers, vocab 50280, d_state 16, expand 2, conv 4,
                      dt_rank 48, tied embeddings (~516 MB). The weights are those of tools/bench/mamba's
                      model workload (export_mamba_block.build_model: same seeds, same initialization).
  llama-134m-shaped/  LlamaForCausalLM: d_model 768, 12 layers, 12 heads (12 KV heads), ffn 2048, vocab 32000,
                      rope theta 10000, untied lm_head (~537 MB).

  /usr/bin/python3 tools/bench/decode/make_checkpoints.py [OUT] [--models mamba,llama] [--force]
  /usr/bin/python3 tools/bench/decode/make_checkpoints.py /tmp/x --layers 2 --vocab 1000    # small, for smoke runs

--layers / --vocab shrink both models (the folder names then end in _n<layers>_v<vocab>). A folder that already
holds both files is kept unless --force. Never commit the output. Run with Debian's interpreter (torch 1.13).
"""
import argparse
import json
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "mamba"))
from export_mamba_block import build_model, write_safetensors  # noqa: E402
from mamba_torch import MAMBA_130M_CONFIG  # noqa: E402

DEFAULT_OUT = "/tmp/seqrun-bench-decode"
MODELS = ("mamba", "llama")
LLAMA_SEED = 9600

# A Llama-shaped 134M model: 2 x 32000 x 768 embedding + lm_head, 12 x (4 x 768^2 + 3 x 768 x 2048) in the layers.
LLAMA_134M_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32000, "hidden_size": 768,
    "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 12, "num_key_value_heads": 12,
    "max_position_embeddings": 32768, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "rope_scaling": None,
    "attention_bias": False, "mlp_bias": False, "hidden_act": "silu", "tie_word_embeddings": False,
    "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32",
}


def folder_name(model, layers, vocab):
    base = {"mamba": "mamba-130m-shaped", "llama": "llama-134m-shaped"}[model]
    return base if layers is None and vocab is None else f"{base}_n{layers or 'full'}_v{vocab or 'full'}"


def model_config(model, layers, vocab):
    cfg = dict(MAMBA_130M_CONFIG if model == "mamba" else LLAMA_134M_CONFIG)
    if layers is not None:
        cfg["num_hidden_layers"] = layers
    if vocab is not None:
        cfg["vocab_size"] = vocab
    return cfg


def llama_tensors(cfg):
    """HF LlamaForCausalLM names -> f32 tensors: embeddings N(0, 1), projections N(0, 1/fan_in), RMSNorm weights
    1 + 0.1 N(0, 1), from one seeded generator in a fixed order."""
    gen = torch.Generator().manual_seed(LLAMA_SEED)
    d, inner, vocab = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    head_dim = d // cfg["num_attention_heads"]
    kv = cfg["num_key_value_heads"] * head_dim

    def linear(out_features, in_features):
        return torch.randn(out_features, in_features, generator=gen) / math.sqrt(in_features)

    def near_one(n):
        return 1.0 + 0.1 * torch.randn(n, generator=gen)

    t = {"model.embed_tokens.weight": torch.randn(vocab, d, generator=gen)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = near_one(d)
        t[p + "self_attn.q_proj.weight"] = linear(d, d)
        t[p + "self_attn.k_proj.weight"] = linear(kv, d)
        t[p + "self_attn.v_proj.weight"] = linear(kv, d)
        t[p + "self_attn.o_proj.weight"] = linear(d, d)
        t[p + "post_attention_layernorm.weight"] = near_one(d)
        t[p + "mlp.gate_proj.weight"] = linear(inner, d)
        t[p + "mlp.up_proj.weight"] = linear(inner, d)
        t[p + "mlp.down_proj.weight"] = linear(d, inner)
    t["model.norm.weight"] = near_one(d)
    t["lm_head.weight"] = linear(vocab, d)
    return t


def write_checkpoint(out, model, layers=None, vocab=None, force=False):
    """Writes one checkpoint folder (unless complete and not force); returns its path."""
    folder = os.path.join(out, folder_name(model, layers, vocab))
    files = [os.path.join(folder, f) for f in ("config.json", "model.safetensors")]
    if all(os.path.exists(f) for f in files) and not force:
        print(f"{model}: {folder} exists")
        return folder
    os.makedirs(folder, exist_ok=True)
    cfg = model_config(model, layers, vocab)
    with torch.no_grad():
        tensors = build_model(cfg, "ref").state_dict() if model == "mamba" else llama_tensors(cfg)
    # The weights first, the config last: a folder with a config.json is complete.
    if os.path.exists(files[0]):
        os.remove(files[0])
    write_safetensors(files[1], tensors)
    with open(files[0], "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    params = sum(t.numel() for t in tensors.values())
    print(f"{model}: wrote {folder} ({params / 1e6:.1f} M parameters, {os.path.getsize(files[1]) / 1e6:.0f} MB)")
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", default=DEFAULT_OUT)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of mamba,llama")
    parser.add_argument("--layers", type=int, default=None, help="layers of both models (default: full size)")
    parser.add_argument("--vocab", type=int, default=None, help="vocabulary of both models (default: full size)")
    parser.add_argument("--force", action="store_true", help="rewrite existing checkpoints")
    args = parser.parse_args()
    models = [m for m in args.models.split(",") if m]
    for m in models:
        if m not in MODELS:
            parser.error(f"unknown model '{m}' (known: {', '.join(MODELS)})")
    if (args.layers is not None and args.layers < 1) or (args.vocab is not None and args.vocab < 2):
        parser.error("--layers must be >= 1 and --vocab >= 2")
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    for m in models:
        write_checkpoint(args.out, m, args.layers, args.vocab, args.force)


if __name__ == "__main__":
    main()
