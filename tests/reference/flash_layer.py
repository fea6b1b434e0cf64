#!/usr/bin/python3
# Regenerates tests/data/attention/flash_layer*: a FLASH layer (Hua et al. 2022, "Transformer Quality in Linear
# Time", section 3 and its pseudo-code), written from the paper's definition in PyTorch and exported with
# torch.onnx.export at opset 17 in the ONNX backend-test layout with PyTorch's own outputs. The
# `fuse-mixed-chunk-attention` pass turns the exported chunked attention into one MixedChunkAttention node.
#
#     /usr/bin/python3 tests/reference/flash_layer.py
#
# One layer, x [B, T, d] -> [B, T, d]:
#   h = LayerNorm(x)
#   u, v = split(silu(h W_uv + b_uv), [e, e])            gating branch U and value V (GAU)
#   z = silu(h W_z + b_z)                                 the shared low-dimensional Z, [B, T, s]
#   quad_q, quad_k, lin_q, lin_k = z * gamma[i] + beta[i] cheap per-dim scale and offset, i = 0..3
#   tokens grouped into chunks of C (T a multiple of C), inside each chunk
#     quadratic = (relu(quad_q quad_kᵀ / C + rel_bias)² ⊙ causal_mask) v
#   across chunks (causal: only earlier chunks; non-causal: every chunk)
#     linear = lin_q · Σ_{earlier chunks} lin_kᵀ v / C   (cumsum over chunks, shifted by one chunk)
#   y = x + (u ⊙ (quadratic + linear)) W_o + b_o
# rel_bias [C, C] is a T5-style relative position bias: a learned scalar per offset j - i (2C - 1 of them).
# The sequence axis is dynamic; test_data_set_0 has T = 32, test_data_set_1 T = 16 (chunk 8).
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from linear_attention_models import export_case  # noqa: E402


class FlashLayer(nn.Module):
    def __init__(self, dim=32, expansion=2, s=16, chunk=8, causal=True, exclusive_style="pad"):
        super().__init__()
        self.e, self.s, self.chunk, self.causal = dim * expansion, s, chunk, causal
        self.exclusive_style = exclusive_style
        self.norm = nn.LayerNorm(dim)
        self.to_uv = nn.Linear(dim, 2 * self.e)
        self.to_z = nn.Linear(dim, s)
        self.gamma = nn.Parameter(1.0 + 0.1 * torch.randn(4, s))
        self.beta = nn.Parameter(0.1 * torch.randn(4, s))
        self.rel_bias = nn.Parameter(0.1 * torch.randn(2 * chunk - 1))
        self.out = nn.Linear(self.e, dim)
        positions = torch.arange(chunk)
        self.register_buffer("rel_index", positions[None, :] - positions[:, None] + chunk - 1)
        self.register_buffer("causal_mask", torch.tril(torch.ones(chunk, chunk)))

    def forward(self, x):
        b, t, _ = x.shape
        c = self.chunk
        g = t // c
        h = self.norm(x)
        u, v = F.silu(self.to_uv(h)).chunk(2, dim=-1)
        z = F.silu(self.to_z(h))
        qk = z.unsqueeze(2) * self.gamma + self.beta  # [B, T, 4, s]
        quad_q, quad_k, lin_q, lin_k = qk.unbind(dim=2)
        quad_q, quad_k = quad_q.reshape(b, g, c, self.s), quad_k.reshape(b, g, c, self.s)
        lin_q, lin_k = lin_q.reshape(b, g, c, self.s), lin_k.reshape(b, g, c, self.s)
        vc = v.reshape(b, g, c, self.e)

        # Quadratic attention inside each chunk: squared ReLU scores.
        scores = torch.matmul(quad_q, quad_k.transpose(-1, -2)) / c + self.rel_bias[self.rel_index]
        kernel = F.relu(scores) ** 2
        if self.causal:
            kernel = kernel * self.causal_mask
        quadratic = torch.matmul(kernel, vc)

        # Linear attention across chunks.
        lin_kv = torch.matmul(lin_k.transpose(-1, -2), vc) / c  # [B, G, s, e]
        if self.causal:
            if self.exclusive_style == "pad":
                lin_kv = F.pad(lin_kv.cumsum(dim=1), (0, 0, 0, 0, 1, 0))[:, :-1]
            else:
                lin_kv = lin_kv.cumsum(dim=1) - lin_kv
        else:
            lin_kv = lin_kv.sum(dim=1, keepdim=True)
        linear = torch.matmul(lin_q, lin_kv)

        attended = (quadratic + linear).reshape(b, t, self.e)
        return x + self.out(u * attended)


def main():
    cases = [("flash_layer", True, "pad"), ("flash_layer_cumsum_sub", True, "sub"),
             ("flash_layer_noncausal", False, "pad")]
    for index, (name, causal, style) in enumerate(cases):
        torch.manual_seed(300 + index)
        model = FlashLayer(causal=causal, exclusive_style=style)
        gen = torch.Generator().manual_seed(400 + index)
        sets = [[torch.randn(2, t, 32, generator=gen)] for t in (32, 16)]
        export_case(name, model, sets, ["x"], ["y"], {"x": {1: "seq"}, "y": {1: "seq"}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
