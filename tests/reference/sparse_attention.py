#!/usr/bin/python3
# Regenerates tests/data/attention/sparse_fixed_*: causal softmax attention with the Sparse Transformer's
# "fixed" pattern (Child et al. 2019, section 4.2) at block granularity, written in PyTorch with the pattern
# as a constant mask buffer and exported with torch.onnx.export at opset 17 in the ONNX backend-test layout,
# with PyTorch's own outputs. chunk-attention turns the fused Attention into ChunkedAttention with
# sparse_block / sparse_local / sparse_stride and no mask (tests/cmake/attention.cmake checks both).
#
#     /usr/bin/python3 tests/reference/sparse_attention.py
#
# The pattern over S tokens in blocks of b: key j is visible from query i iff
#     j <= i  and  (i // b - j // b < local  or  (j // b) % stride == stride - 1)
# (the local blocks, plus one "summary" block at the end of every stride of blocks).
# q, k, v [1, H, S, D] are inputs; scores = q kᵀ / sqrt(D), masked two ways:
#   sparse_fixed_fill  scores.masked_fill(~mask, -inf)      (bool buffer -> Where)
#   sparse_fixed_bias  scores + bias, bias = 0 / -inf        (float buffer -> Add)
# then softmax and · v. Fixed seeds: a rerun rewrites byte-identical files.
import math
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from linear_attention_models import export_case  # noqa: E402

SEQ, HEADS, HEAD_DIM = 192, 2, 16
BLOCK, LOCAL, STRIDE = 32, 2, 3


def fixed_pattern(seq, block, local, stride):
    """[seq, seq] bool, True = visible."""
    i = torch.arange(seq)[:, None]
    j = torch.arange(seq)[None, :]
    local_blocks = (i // block - j // block) < local
    summary = (j // block) % stride == stride - 1
    return (j <= i) & (local_blocks | summary)


class SparseAttention(nn.Module):
    def __init__(self, style):
        super().__init__()
        self.style = style
        mask = fixed_pattern(SEQ, BLOCK, LOCAL, STRIDE)
        if style == "fill":
            self.register_buffer("mask", mask)
        else:
            self.register_buffer("bias", torch.zeros(SEQ, SEQ).masked_fill(~mask, float("-inf")))

    def forward(self, q, k, v):
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(HEAD_DIM)
        if self.style == "fill":
            scores = scores.masked_fill(~self.mask, float("-inf"))
        else:
            scores = scores + self.bias
        return torch.matmul(torch.softmax(scores, dim=-1), v)


def main():
    for style in ("fill", "bias"):
        torch.manual_seed(1234)
        inputs = [torch.randn(1, HEADS, SEQ, HEAD_DIM) for _ in range(3)]
        export_case("sparse_fixed_" + style, SparseAttention(style), [inputs], ["q", "k", "v"], ["y"], None)


if __name__ == "__main__":
    main()
