#!/usr/bin/python3
"""Exports the attention benchmark's models, inputs and reference values (README.md in this folder).

For each length S (default 1024, 4096, 16384, 65536) it writes OUT/seq<S>/:
  attention.onnx    causal softmax attention, 8 heads x 64, torch.onnx.export at opset 17:
                    q, k, v f32 [1, 8, S, 64] -> y [1, 8, S, 64] as a user writes it with torch 1.13 (which
                    has no scaled_dot_product_attention): MatMul(q, kᵀ)·(1/8), masked_fill(triu(ones(S, S), 1),
                    -inf), Softmax, MatMul(·, v). Static shapes up to 16k (torch folds the mask into an S x S
                    bool constant: 256 MB at 16k). At 64k that constant would be 4 GiB, past protobuf's 2 GiB
                    limit, so the 64k export keeps the sequence axis symbolic and the mask is computed at run
                    time (ConstantOfShape + Trilu); 64k is a seqrun-only length (ORT would need 16 GiB of
                    scores per head group).
  q.npy k.npy v.npy          seeded N(0, 1) inputs
  check_rows.npy             34 query rows (first, last, 32 random) checked against check_y.npy:
  check_y.npy                their exact output in float64, [1, 8, 34, 64]
  linear_<form>.onnx         one LinearAttention node (opset 27) for prefill: query/key/value [1, S, 512]
                             (the same numbers as q/k/v, heads packed) -> y [1, S, 512], present_state
                             [1, 8, 64, 64]; <form> is
                               linear   update_rule linear (S += k vᵀ)
                               retnet   gated, a constant per-head decay log(1 - 2^(-5-h)) (an initializer)
                               gla      gated, a data-dependent per-key-channel decay input [1, S, 512]
                                        drawn from U(-0.1, 0)
  qp.npy kp.npy vp.npy gla_decay.npy    those inputs
  linear_<form>_check_y.npy  the rows check_rows of y, from a float64 token-by-token recurrence
  linear_<form>_state.npy    the final state of that recurrence
and once, in OUT/step/: linear_<form>_step.onnx (one decode token, past_state input) with its inputs
q1.npy k1.npy v1.npy gla_decay1.npy.

Everything is seeded: two exports are the same files. Nothing here is committed (default OUT:
build/bench/attention).

  /usr/bin/python3 tools/bench/attention/export_attention.py                   # 1k, 4k, 16k, 64k
  /usr/bin/python3 tools/bench/attention/export_attention.py --seq 256,512     # smoke sizes
"""
import argparse
import math
import os
import time

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DEFAULT_OUT = os.path.join(REPO_ROOT, "build", "bench", "attention")
SEED = 2024
HEADS = 8
HEAD_DIM = 64
OPSET = 17
LINEAR_OPSET = 27
STATIC_MAX_SEQ = 16384  # above this the folded mask no longer fits in an ONNX file
LINEAR_FORMS = ("linear", "retnet", "gla")


class CausalAttention(nn.Module):
    """Causal softmax attention on [batch, heads, seq, head_dim], written out as a user would."""

    def forward(self, q, k, v):
        seq = q.shape[2]
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[3]))
        future = torch.triu(torch.ones(seq, seq, dtype=torch.bool, device=q.device), diagonal=1)
        scores = scores.masked_fill(future, float("-inf"))
        return torch.matmul(torch.softmax(scores, dim=-1), v)


def export_softmax(folder, q, k, v):
    seq = q.shape[2]
    path = os.path.join(folder, "attention.onnx")
    tensors = tuple(torch.from_numpy(x) for x in (q, k, v))
    dynamic = None if seq <= STATIC_MAX_SEQ else {n: {2: "seq"} for n in ("q", "k", "v", "y")}
    if dynamic is not None:  # trace at a small length: the graph is the same, the trace far cheaper
        tensors = tuple(t[:, :, :128].contiguous() for t in tensors)
    with torch.no_grad():
        torch.onnx.export(CausalAttention(), tensors, path, opset_version=OPSET, input_names=["q", "k", "v"],
                          output_names=["y"], do_constant_folding=True, dynamic_axes=dynamic)


def softmax_check(q, k, v, rows):
    """Exact causal attention output (float64) at query rows `rows`: [1, H, len(rows), D]."""
    out = np.empty((1, q.shape[1], len(rows), v.shape[3]))
    for h in range(q.shape[1]):
        for n, i in enumerate(rows):
            s = (k[0, h, : i + 1].astype(np.float64) @ q[0, h, i].astype(np.float64)) / math.sqrt(q.shape[3])
            p = np.exp(s - s.max())
            out[0, h, n] = (p / p.sum()) @ v[0, h, : i + 1].astype(np.float64)
    return out


def retnet_log_decay():
    return np.log(1.0 - 2.0 ** (-5.0 - np.arange(HEADS))).astype(np.float32).reshape(1, 1, HEADS)


def linear_model(form, seq, step):
    """The LinearAttention graph of `form` at `seq` tokens; `step` adds the past_state input."""
    width = HEADS * HEAD_DIM
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, seq, width]) for n in ("query", "key", "value")]
    node_inputs = ["query", "key", "value", "past_state" if step else ""]
    initializers = []
    if step:
        inputs.append(helper.make_tensor_value_info("past_state", TensorProto.FLOAT, [1, HEADS, HEAD_DIM, HEAD_DIM]))
    if form == "retnet":
        initializers.append(numpy_helper.from_array(retnet_log_decay(), "decay"))
        node_inputs.append("decay")
    elif form == "gla":
        inputs.append(helper.make_tensor_value_info("decay", TensorProto.FLOAT, [1, seq, width]))
        node_inputs.append("decay")
    while node_inputs[-1] == "":
        node_inputs.pop()
    node = helper.make_node("LinearAttention", node_inputs, ["y", "present_state"], name="linear_attention",
                            q_num_heads=HEADS, kv_num_heads=HEADS,
                            update_rule="linear" if form == "linear" else "gated")
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, seq, width]),
               helper.make_tensor_value_info("present_state", TensorProto.FLOAT, [1, HEADS, HEAD_DIM, HEAD_DIM])]
    graph = helper.make_graph([node], f"linear_{form}", inputs, outputs, initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", LINEAR_OPSET)],
                             producer_name="seqrun export_attention.py")


def linear_reference(form, qp, kp, vp, gla_decay, rows):
    """Token-by-token recurrence in float64: y at `rows` [len(rows), H*D] and the final state [1, H, D, D]."""
    seq = qp.shape[1]
    q = qp[0].reshape(seq, HEADS, HEAD_DIM).astype(np.float64)
    k = kp[0].reshape(seq, HEADS, HEAD_DIM).astype(np.float64)
    v = vp[0].reshape(seq, HEADS, HEAD_DIM).astype(np.float64)
    scale = 1.0 / math.sqrt(HEAD_DIM)
    state = np.zeros((HEADS, HEAD_DIM, HEAD_DIM))
    wanted = {int(r): n for n, r in enumerate(rows)}
    y = np.empty((len(rows), HEADS * HEAD_DIM))
    retnet = np.exp(retnet_log_decay().astype(np.float64).reshape(HEADS, 1, 1))
    for t in range(seq):
        if form == "retnet":
            state *= retnet
        elif form == "gla":
            state *= np.exp(gla_decay[0, t].astype(np.float64).reshape(HEADS, HEAD_DIM, 1))
        state += k[t][:, :, None] * v[t][:, None, :]
        if t in wanted:
            y[wanted[t]] = scale * np.einsum("hd,hde->he", q[t], state).reshape(-1)
    return y, state[None].astype(np.float32)


def export_length(out_root, seq, force):
    folder = os.path.join(out_root, f"seq{seq}")
    files = ["attention.onnx", "q.npy", "k.npy", "v.npy", "check_rows.npy", "check_y.npy", "gla_decay.npy"]
    files += [f"linear_{f}.onnx" for f in LINEAR_FORMS] + [f"linear_{f}_state.npy" for f in LINEAR_FORMS]
    if not force and all(os.path.exists(os.path.join(folder, f)) for f in files):
        print(f"{folder}: up to date")
        return
    os.makedirs(folder, exist_ok=True)
    start = time.time()
    rng = np.random.default_rng(SEED)
    q, k, v = (rng.standard_normal((1, HEADS, seq, HEAD_DIM), dtype=np.float32) for _ in range(3))
    gla_decay = rng.uniform(-0.1, 0.0, size=(1, seq, HEADS * HEAD_DIM)).astype(np.float32)
    rows = np.unique(np.concatenate([[0, seq - 1], rng.choice(seq, size=min(seq, 32), replace=False)]))
    for name, x in (("q", q), ("k", k), ("v", v), ("gla_decay", gla_decay), ("check_rows", rows.astype(np.int64))):
        np.save(os.path.join(folder, f"{name}.npy"), x)
    export_softmax(folder, q, k, v)
    np.save(os.path.join(folder, "check_y.npy"), softmax_check(q, k, v, rows))
    packed = [x.transpose(0, 2, 1, 3).reshape(1, seq, HEADS * HEAD_DIM).copy() for x in (q, k, v)]
    for name, x in zip(("qp", "kp", "vp"), packed):
        np.save(os.path.join(folder, f"{name}.npy"), x)
    for form in LINEAR_FORMS:
        onnx.save(linear_model(form, seq, step=False), os.path.join(folder, f"linear_{form}.onnx"))
        y, state = linear_reference(form, *packed, gla_decay, rows)
        np.save(os.path.join(folder, f"linear_{form}_check_y.npy"), y)
        np.save(os.path.join(folder, f"linear_{form}_state.npy"), state)
    size_mb = os.path.getsize(os.path.join(folder, "attention.onnx")) / 1e6
    print(f"{folder}: exported (attention.onnx {size_mb:.1f} MB, {time.time() - start:.1f} s)")


def export_step(out_root):
    folder = os.path.join(out_root, "step")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(SEED + 1)
    width = HEADS * HEAD_DIM
    for name in ("q1", "k1", "v1"):
        np.save(os.path.join(folder, f"{name}.npy"), rng.standard_normal((1, 1, width), dtype=np.float32))
    np.save(os.path.join(folder, "gla_decay1.npy"), rng.uniform(-0.1, 0.0, size=(1, 1, width)).astype(np.float32))
    for form in LINEAR_FORMS:
        onnx.save(linear_model(form, 1, step=True), os.path.join(folder, f"linear_{form}_step.onnx"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq", default="1024,4096,16384,65536", help="comma-separated lengths")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="re-export even when the files exist")
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    for seq in [int(s) for s in args.seq.split(",") if s]:
        if seq < 2:
            parser.error("--seq values must be at least 2")
        export_length(args.out, seq, args.force)
    export_step(args.out)


if __name__ == "__main__":
    main()
