#!/usr/bin/python3
# Regenerates tests/data/attention/linear_*: small PyTorch linear-transformer blocks (Katharopoulos et al. 2020,
# "Transformers are RNNs") written in the quadratic form the `linearize-attention` pass rewrites, exported with
# torch.onnx.export at opset 17 in the ONNX backend-test layout with PyTorch's own outputs.
#
#     /usr/bin/python3 tests/reference/linear_attention_models.py
#
# Each block: pre-LayerNorm, Q/K/V projections, 4 heads, feature map phi (elu(x)+1, relu or identity), scores
# A = phi(Q) phi(K)^T (no softmax), optionally causally masked (three ways torch code writes it: torch.tril ->
# Trilu, a registered tril buffer sliced [:T, :T] -> Slice + Mul, masked_fill -> Where), Y = A V, optionally
# normalized Y / (A.sum(-1) + eps), output projection, residual, GELU MLP. The sequence axis is dynamic
# ("seq"); test_data_set_0 has seq 16, test_data_set_1 seq 7. Every weight and input comes from a fixed seed,
# so a rerun rewrites byte-identical files. flash_layer.py reuses export_case from here.
import io
import os
import shutil
import sys
import warnings

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ATTENTION_DIR = os.path.join(REPO_ROOT, "tests", "data", "attention")
MAX_MODEL_BYTES = 256 << 10
OPSET = 17

torch.set_num_threads(1)
warnings.filterwarnings("ignore")  # tracer warnings about shape-as-int; the graphs are checked below


def write_tensor(path, array, name):
    with open(path, "wb") as f:
        f.write(onnx.numpy_helper.from_array(array, name).SerializeToString())


def export_case(name, model, input_sets, input_names, output_names, dynamic_axes):
    """Exports `model` traced on input_sets[0]; writes model.onnx and one test_data_set_K per input set with
    the outputs eager PyTorch computed. Returns the exported op types."""
    model.eval()
    folder = os.path.join(ATTENTION_DIR, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    buffer = io.BytesIO()
    torch.onnx.export(model, tuple(input_sets[0]), buffer, opset_version=OPSET, input_names=input_names,
                      output_names=output_names, dynamic_axes=dynamic_axes, do_constant_folding=True)
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == input_names
    assert [o.name for o in proto.graph.output] == output_names
    model_path = os.path.join(folder, "model.onnx")
    onnx.save(proto, model_path)
    assert os.path.getsize(model_path) < MAX_MODEL_BYTES, (name, os.path.getsize(model_path))
    for set_index, inputs in enumerate(input_sets):
        data_dir = os.path.join(folder, "test_data_set_%d" % set_index)
        os.makedirs(data_dir)
        with torch.no_grad():
            result = model(*inputs)
        outputs = result if isinstance(result, (tuple, list)) else (result,)
        for i, tensor in enumerate(inputs):
            write_tensor(os.path.join(data_dir, "input_%d.pb" % i), tensor.numpy(), input_names[i])
        for i, out in enumerate(outputs):
            array = out.numpy()
            assert np.all(np.isfinite(array)), (name, output_names[i])
            write_tensor(os.path.join(data_dir, "output_%d.pb" % i), array, output_names[i])
    ops = sorted({n.op_type for n in proto.graph.node})
    print("%-34s %6d bytes  %d set(s)  ops: %s" % (name, os.path.getsize(model_path), len(input_sets),
                                                   " ".join(ops)))
    return ops


def feature_map(x, kind):
    if kind == "elu":
        return F.elu(x) + 1.0
    if kind == "relu":
        return F.relu(x)
    assert kind == "identity"
    return x


class LinearAttentionBlock(nn.Module):
    """x [B, T, D] -> [B, T, D]: pre-norm linear attention (quadratic form) + GELU MLP, both residual."""

    def __init__(self, dim, heads, phi, causal, mask_style, normalized, max_len=64, eps=1e-6):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.phi, self.causal, self.mask_style, self.normalized, self.eps = phi, causal, mask_style, normalized, eps
        self.norm1 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.register_buffer("tril", torch.tril(torch.ones(max_len, max_len)))

    def split_heads(self, x):
        b, t, _ = x.shape
        return x.reshape(b, t, self.heads, self.head_dim).transpose(1, 2)  # [B, H, T, Dh]

    def attention(self, x):
        b, t, d = x.shape
        q = feature_map(self.split_heads(self.q(x)), self.phi)
        k = feature_map(self.split_heads(self.k(x)), self.phi)
        v = self.split_heads(self.v(x))
        a = torch.matmul(q, k.transpose(-1, -2))  # [B, H, T, T]
        if self.causal:
            if self.mask_style == "tril":
                a = torch.tril(a)
            elif self.mask_style == "buffer":
                a = a * self.tril[:t, :t]
            else:
                assert self.mask_style == "masked_fill"
                a = a.masked_fill(self.tril[:t, :t] == 0, 0.0)
        y = torch.matmul(a, v)
        if self.normalized:
            y = y / (a.sum(dim=-1, keepdim=True) + self.eps)
        return self.out(y.transpose(1, 2).reshape(b, t, d))

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


# name: (feature map, causal, mask style, normalized)
MODELS = {
    "linear_causal_elu_norm": ("elu", True, "tril", True),
    "linear_causal_relu_buffer": ("relu", True, "buffer", False),
    "linear_causal_identity_where": ("identity", True, "masked_fill", False),
    "linear_causal_relu_norm_buffer": ("relu", True, "buffer", True),
    "linear_noncausal_elu_norm": ("elu", False, None, True),
    "linear_noncausal_relu": ("relu", False, None, False),
}


def main():
    os.makedirs(ATTENTION_DIR, exist_ok=True)
    dim, heads, batch = 32, 4, 2
    for index, (name, (phi, causal, mask_style, normalized)) in enumerate(MODELS.items()):
        torch.manual_seed(100 + index)
        model = LinearAttentionBlock(dim, heads, phi, causal, mask_style, normalized)
        gen = torch.Generator().manual_seed(200 + index)
        sets = [[torch.randn(batch, t, dim, generator=gen)] for t in (16, 7)]
        if phi == "relu" and normalized:
            # relu features can give an all-zero row sum; shift the input so every query sees some mass.
            sets = [[s[0] + 0.5] for s in sets]
        ops = export_case(name, model, sets, ["x"], ["y"], {"x": {1: "seq"}, "y": {1: "seq"}})
        assert "Softmax" not in ops
    return 0


if __name__ == "__main__":
    sys.exit(main())
