#!/usr/bin/python3
"""Writes the inputs of seqrun's Mamba benchmarks (tools/bench/mamba/README.md) under build/bench/mamba/:

  block  the Mamba block (mixer: d_model 768, d_state 16, expand 2, d_conv 4, dt_rank 48) on hidden states
         [batch, seq, 768]: block.onnx (its scan a torch.jit.script loop -> ONNX Loop, opset 17),
         weights.pt + config.json (for the PyTorch runner, which uses the reference scan), hidden_states.npy
         and reference_output.npy (PyTorch, reference scan).
  scan   the selective scan alone with the block's shapes: scan.onnx (the scripted loop), its eight inputs
         (u, delta, z [b, d, l]; A [d, n]; B, C [b, n, l]; D, delta_bias [d]) as .npy and reference_y.npy.
  model  a Mamba-130M-shaped MambaForCausalLM checkpoint in the Hugging Face layout (config.json +
         model.safetensors written by hand, f32, random weights from a fixed seed: 24 layers x d_model 768,
         vocab 50280, ~516 MB) and input_ids.npy ([1, prompt] token ids); with --model-reference also PyTorch's
         logits, with --model-onnx also model.onnx (every layer's scan an ONNX Loop) for ONNX Runtime.

  /usr/bin/python3 tools/bench/mamba/export_mamba_block.py                     # block + scan + model
  /usr/bin/python3 tools/bench/mamba/export_mamba_block.py --what block,scan --seq 256     # smoke sizes
  /usr/bin/python3 tools/bench/mamba/export_mamba_block.py --what model --layers 2 --vocab 1000 --prompt 64

Folders are reused when complete (--force rewrites them). Nothing here is committed: the output lives in build/.
Run with Debian's interpreter (torch 1.13, onnx, numpy).
"""
import argparse
import io
import json
import os
import struct
import sys
import warnings

import numpy as np
import onnx
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, HERE)
from mamba_torch import (MAMBA_130M_CONFIG, MambaForCausalLM, MambaMixer, init_mixer_, init_model_,  # noqa: E402
                         selective_scan_loop, selective_scan_ref)

OPSET = 17
BLOCK = {"d_model": 768, "d_state": 16, "expand": 2, "d_conv": 4, "dt_rank": 48}

warnings.filterwarnings("ignore")  # torch.onnx's warnings about scripting inside a traced module


def block_dir(out, batch, seq):
    return os.path.join(out, f"block_b{batch}_l{seq}")


def scan_dir(out, batch, seq):
    return os.path.join(out, f"scan_b{batch}_l{seq}")


def model_dir(out, layers, vocab, prompt):
    return os.path.join(out, f"mamba130m_n{layers}_v{vocab}_p{prompt}")


def complete(folder, files):
    return all(os.path.exists(os.path.join(folder, f)) for f in files)


def onnx_export(module, args, path, input_names, output_names):
    buffer = io.BytesIO()
    torch.onnx.export(module, args, buffer, opset_version=OPSET, input_names=input_names, output_names=output_names,
                      do_constant_folding=True)
    proto = onnx.load_from_string(buffer.getvalue())
    ops = sorted({n.op_type for n in proto.graph.node})
    if "Loop" not in ops:
        raise SystemExit(f"{path}: the scripted scan did not export as a Loop (ops: {ops})")
    if proto.ByteSize() < 2_000_000_000:
        onnx.save(proto, path)
    else:  # weights beside the graph (protobuf's 2 GiB limit)
        onnx.save(proto, path, save_as_external_data=True, location=os.path.basename(path) + ".data")
    loop = next(n for n in proto.graph.node if n.op_type == "Loop")
    body_ops = sorted({n.op_type for n in loop.attribute[0].g.node})
    print(f"  {os.path.relpath(path, REPO_ROOT)}: ops {' '.join(ops)}; Loop body: {' '.join(body_ops)}")


def make_block(gen):
    block = MambaMixer(BLOCK["d_model"], BLOCK["d_state"], BLOCK["expand"], BLOCK["d_conv"], BLOCK["dt_rank"],
                       scan="loop")
    init_mixer_(block, gen)
    return block.eval()


def export_block(args):
    folder = block_dir(args.out, args.batch, args.seq)
    files = ["block.onnx", "weights.pt", "config.json", "hidden_states.npy", "reference_output.npy"]
    if complete(folder, files) and not args.force:
        print(f"block: {os.path.relpath(folder, REPO_ROOT)} exists")
        return
    os.makedirs(folder, exist_ok=True)
    block = make_block(torch.Generator().manual_seed(9100))
    hidden = torch.randn(args.batch, args.seq, BLOCK["d_model"], generator=torch.Generator().manual_seed(9200))
    torch.save(block.state_dict(), os.path.join(folder, "weights.pt"))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(dict(BLOCK, batch=args.batch, seq=args.seq), f, indent=2)
    np.save(os.path.join(folder, "hidden_states.npy"), hidden.numpy())
    with torch.no_grad():
        block.scan = "ref"
        np.save(os.path.join(folder, "reference_output.npy"), block(hidden).numpy())
        block.scan = "loop"
        onnx_export(block, (hidden,), os.path.join(folder, "block.onnx"), ["hidden_states"], ["output"])
    print(f"block: wrote {os.path.relpath(folder, REPO_ROOT)}")


class ScanOnly(torch.nn.Module):
    def forward(self, u, delta, A, B, C, D, z, delta_bias):
        return selective_scan_loop(u, delta, A, B, C, D, z, delta_bias)


SCAN_INPUTS = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias"]


def export_scan(args):
    folder = scan_dir(args.out, args.batch, args.seq)
    files = ["scan.onnx", "reference_y.npy"] + [n + ".npy" for n in SCAN_INPUTS]
    if complete(folder, files) and not args.force:
        print(f"scan: {os.path.relpath(folder, REPO_ROOT)} exists")
        return
    os.makedirs(folder, exist_ok=True)
    # The block's parameters and the activations its scan would see (Δ before bias and softplus).
    block = make_block(torch.Generator().manual_seed(9100))
    gen = torch.Generator().manual_seed(9300)
    d, n, b, l = block.d_inner, block.d_state, args.batch, args.seq
    with torch.no_grad():
        inputs = {
            "u": torch.randn(b, d, l, generator=gen),
            "delta": 0.5 * torch.randn(b, d, l, generator=gen),
            "A": -torch.exp(block.A_log),
            "B": torch.randn(b, n, l, generator=gen),
            "C": torch.randn(b, n, l, generator=gen),
            "D": block.D.detach().clone(),
            "z": torch.randn(b, d, l, generator=gen),
            "delta_bias": block.dt_proj.bias.detach().clone(),
        }
        y = selective_scan_ref(*[inputs[k] for k in SCAN_INPUTS])
    for k in SCAN_INPUTS:
        np.save(os.path.join(folder, k + ".npy"), inputs[k].numpy())
    np.save(os.path.join(folder, "reference_y.npy"), y.numpy())
    onnx_export(ScanOnly(), tuple(inputs[k] for k in SCAN_INPUTS), os.path.join(folder, "scan.onnx"), SCAN_INPUTS,
                ["y"])
    print(f"scan: wrote {os.path.relpath(folder, REPO_ROOT)}")


def write_safetensors(path, tensors):
    """f32 tensors (name -> torch tensor) in the safetensors layout: u64 LE header length, JSON header padded
    with spaces to a multiple of 8, then the raw little-endian bytes in order."""
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, t in tensors.items():
        size = t.numel() * 4
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for t in tensors.values():
            f.write(t.detach().contiguous().to(torch.float32).numpy().tobytes())


def model_config(args):
    cfg = dict(MAMBA_130M_CONFIG)
    cfg["num_hidden_layers"] = args.layers
    cfg["vocab_size"] = args.vocab
    return cfg


def build_model(cfg, scan):
    torch.manual_seed(0)  # nn.Module's own init is overwritten below; this keeps it cheap and repeatable
    model = MambaForCausalLM(cfg, scan=scan)
    init_model_(model, torch.Generator().manual_seed(9400))
    return model.eval()


def export_model(args):
    folder = model_dir(args.out, args.layers, args.vocab, args.prompt)
    files = ["config.json", "model.safetensors", "input_ids.npy"]
    if args.model_reference:
        files.append("reference_logits.npy")
    if args.model_onnx:
        files.append("model.onnx")
    if complete(folder, files) and not args.force:
        print(f"model: {os.path.relpath(folder, REPO_ROOT)} exists")
        return
    os.makedirs(folder, exist_ok=True)
    cfg = model_config(args)
    model = build_model(cfg, "ref")
    ids = torch.randint(0, cfg["vocab_size"], (1, args.prompt), generator=torch.Generator().manual_seed(9500))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    write_safetensors(os.path.join(folder, "model.safetensors"), model.state_dict())
    np.save(os.path.join(folder, "input_ids.npy"), ids.numpy().astype(np.int64))
    if args.model_reference:
        with torch.no_grad():
            np.save(os.path.join(folder, "reference_logits.npy"), model(ids).numpy())
    if args.model_onnx:
        for layer in model.backbone.layers:
            layer.mixer.scan = "loop"
        with torch.no_grad():
            onnx_export(model, (ids,), os.path.join(folder, "model.onnx"), ["input_ids"], ["logits"])
    size_mb = os.path.getsize(os.path.join(folder, "model.safetensors")) / 1e6
    print(f"model: wrote {os.path.relpath(folder, REPO_ROOT)} ({size_mb:.0f} MB of weights)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--what", default="block,scan,model", help="comma-separated subset of block,scan,model")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seq", type=int, default=2048, help="sequence length of block and scan")
    parser.add_argument("--prompt", type=int, default=512, help="prompt length of the model")
    parser.add_argument("--layers", type=int, default=24, help="model layers (smoke tests: fewer)")
    parser.add_argument("--vocab", type=int, default=50280, help="model vocabulary (smoke tests: smaller)")
    parser.add_argument("--model-reference", action="store_true", help="also save PyTorch's logits for the model")
    parser.add_argument("--model-onnx", action="store_true", help="also export the model to ONNX (for ORT)")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "build", "bench", "mamba"))
    parser.add_argument("--force", action="store_true", help="rewrite existing folders")
    args = parser.parse_args()
    what = [w for w in args.what.split(",") if w]
    for w in what:
        if w not in ("block", "scan", "model"):
            parser.error(f"unknown --what '{w}' (block, scan, model)")
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if "block" in what:
        export_block(args)
    if "scan" in what:
        export_scan(args)
    if "model" in what:
        export_model(args)


if __name__ == "__main__":
    main()
