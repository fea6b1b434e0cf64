#!/usr/bin/python3
# Regenerates tests/data/ssm/*: a small PyTorch Mamba block whose selective scan is a torch.jit.script
# for-loop, exported with torch.onnx.export at opset 17 (the scripted loop becomes an ONNX Loop), with
# PyTorch's own outputs saved in the ONNX backend-test layout (model.onnx + test_data_set_K/{input,output}_N.pb).
#
# Run with Debian's interpreter (torch 1.13, onnx 1.12, numpy):
#     /usr/bin/python3 tests/reference/mamba_block.py
# Weights and inputs come from fixed seeds, so a rerun rewrites identical files. `seqrun-export check
# tests/data/ssm` (tests/cmake/ssm.cmake) compares seqrun against the saved outputs at -O0 and -O1; at -O1 the
# fuse-ssm-scan pass must turn each Loop into one SelectiveScan node.
#
# The block follows the Mamba paper / Hugging Face MambaMixer slow path: in_proj -> (x, z); x -> depthwise
# causal conv1d + SiLU; x_proj -> (dt, B, C); dt_proj + softplus -> delta; selective scan
# h_t = exp(delta_t A) h_{t-1} + delta_t B_t x_t, y_t = C_t . h_t; y + D x; y * SiLU(z); out_proj.
#
# Two exports of the same block (same weights), differing only in how the scan is written:
#   mamba_block_loop     the loop slices step t of delta, x, B, C, discretizes inside the body, reads out with
#                        a sum over the state axis and writes y[:, :, t] into a preallocated buffer
#                        (ONNX: Gather of step t, ScatterND into a loop-carried buffer at computed indices).
#   mamba_block_loop_hf  HF slow-path style: exp(delta A) and delta B x are computed for all steps before the
#                        loop ([B, D, L, N] tensors), the body only slices them, reads out with a matmul
#                        against C_t, and the D skip is applied inside the scripted function.
import io
import os
import shutil
import warnings

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SSM_DIR = os.path.join(REPO_ROOT, "tests", "data", "ssm")
OPSET = 17

D_MODEL, D_INNER, D_STATE, D_CONV, DT_RANK, SEQ_LEN, BATCH = 16, 32, 4, 4, 2, 7, 2

torch.set_num_threads(1)
warnings.filterwarnings("ignore")  # torch.onnx's warnings about scripting inside a traced module


@torch.jit.script
def selective_scan_loop(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                        C: torch.Tensor) -> torch.Tensor:
    """u, delta [b, d, l]; A [d, n]; B, C [b, l, n] -> y [b, d, l] (no D skip, no gate)."""
    batch, dim, seqlen = u.shape[0], u.shape[1], u.shape[2]
    h = torch.zeros(batch, dim, A.shape[1], dtype=u.dtype)
    y = torch.zeros(batch, dim, seqlen, dtype=u.dtype)
    for t in range(seqlen):
        delta_t = delta[:, :, t]
        decay = torch.exp(delta_t.unsqueeze(-1) * A)  # [b, d, n]
        inject = (delta_t * u[:, :, t]).unsqueeze(-1) * B[:, t].unsqueeze(1)  # [b, d, n]
        h = decay * h + inject
        y[:, :, t] = (h * C[:, t].unsqueeze(1)).sum(-1)
    return y


@torch.jit.script
def selective_scan_loop_hf(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                           C: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """Same scan, HF MambaMixer slow-path style, with the D skip: returns y + D u."""
    batch, dim, seqlen = u.shape[0], u.shape[1], u.shape[2]
    discrete_A = torch.exp(A[None, :, None, :] * delta[:, :, :, None])  # [b, d, l, n]
    deltaB_u = delta[:, :, :, None] * B[:, None, :, :] * u[:, :, :, None]  # [b, d, l, n]
    h = torch.zeros(batch, dim, A.shape[1], dtype=u.dtype)
    y = torch.zeros(batch, dim, seqlen, dtype=u.dtype)
    for i in range(seqlen):
        h = discrete_A[:, :, i, :] * h + deltaB_u[:, :, i, :]
        scan_output = torch.matmul(h, C[:, i, :].unsqueeze(-1))  # [b, d, 1]
        y[:, :, i] = scan_output[:, :, 0]
    return y + u * D[None, :, None]


class MambaBlock(nn.Module):
    def __init__(self, hf_style):
        super().__init__()
        self.hf_style = hf_style
        self.in_proj = nn.Linear(D_MODEL, 2 * D_INNER, bias=False)
        self.conv1d = nn.Conv1d(D_INNER, D_INNER, D_CONV, groups=D_INNER, padding=D_CONV - 1, bias=True)
        self.x_proj = nn.Linear(D_INNER, DT_RANK + 2 * D_STATE, bias=False)
        self.dt_proj = nn.Linear(DT_RANK, D_INNER, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, D_STATE + 1, dtype=torch.float32)).repeat(D_INNER, 1))
        self.D = nn.Parameter(torch.ones(D_INNER))
        self.out_proj = nn.Linear(D_INNER, D_MODEL, bias=False)

    def forward(self, hidden_states):  # [batch, seq, d_model]
        seq_len = hidden_states.shape[1]
        projected = self.in_proj(hidden_states).transpose(1, 2)  # [batch, 2 d_inner, seq]
        x, z = projected.chunk(2, dim=1)
        x = F.silu(self.conv1d(x)[..., :seq_len])  # causal: keep the first seq outputs
        ssm_parameters = self.x_proj(x.transpose(1, 2))  # [batch, seq, dt_rank + 2 d_state]
        time_step, B, C = torch.split(ssm_parameters, [DT_RANK, D_STATE, D_STATE], dim=-1)
        delta = F.softplus(self.dt_proj(time_step)).transpose(1, 2)  # [batch, d_inner, seq]
        A = -torch.exp(self.A_log)
        if self.hf_style:
            y = selective_scan_loop_hf(x, delta, A, B, C, self.D)
        else:
            y = selective_scan_loop(x, delta, A, B, C)
            y = y + x * self.D[None, :, None]
        y = y * F.silu(z)
        return self.out_proj(y.transpose(1, 2))  # [batch, seq, d_model]


def make_block(hf_style):
    torch.manual_seed(7100)
    block = MambaBlock(hf_style)
    gen = torch.Generator().manual_seed(7200)
    with torch.no_grad():
        # Mamba's initialization in spirit: A_log = log(1..N) (plus noise), dt bias = softplus^-1 of a
        # step size in [1e-3, 1e-1], D near 1; every other weight small and random.
        block.A_log.add_(0.1 * torch.randn(block.A_log.shape, generator=gen))
        dt = torch.exp(torch.rand(D_INNER, generator=gen) * (np.log(0.1) - np.log(1e-3)) + np.log(1e-3))
        block.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        block.D.add_(0.1 * torch.randn(D_INNER, generator=gen))
        for lin in (block.in_proj, block.x_proj, block.dt_proj, block.out_proj):
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=gen) / np.sqrt(lin.weight.shape[1]))
        block.conv1d.weight.copy_(0.5 * torch.randn(block.conv1d.weight.shape, generator=gen))
        block.conv1d.bias.copy_(0.1 * torch.randn(block.conv1d.bias.shape, generator=gen))
    return block.eval()


def write_tensor(path, array, name):
    with open(path, "wb") as f:
        f.write(onnx.numpy_helper.from_array(array, name).SerializeToString())


def export_case(name, block, input_sets):
    folder = os.path.join(SSM_DIR, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    buffer = io.BytesIO()
    torch.onnx.export(block, (input_sets[0],), buffer, opset_version=OPSET, input_names=["hidden_states"],
                      output_names=["output"], do_constant_folding=True)
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    ops = sorted({n.op_type for n in proto.graph.node})
    assert "Loop" in ops, (name, ops)  # the scripted for-loop must stay a loop
    loop = next(n for n in proto.graph.node if n.op_type == "Loop")
    body_ops = sorted({n.op_type for n in loop.attribute[0].g.node})
    assert "ScatterND" in body_ops and "Gather" in body_ops, (name, body_ops)
    model_path = os.path.join(folder, "model.onnx")
    onnx.save(proto, model_path)
    for set_index, hidden in enumerate(input_sets):
        data_dir = os.path.join(folder, "test_data_set_%d" % set_index)
        os.makedirs(data_dir)
        with torch.no_grad():
            out = block(hidden).numpy()
        assert np.all(np.isfinite(out))
        write_tensor(os.path.join(data_dir, "input_0.pb"), hidden.numpy(), "hidden_states")
        write_tensor(os.path.join(data_dir, "output_0.pb"), out, "output")
    print("%-22s opset %d  %6d bytes  ops: %s  loop body: %s"
          % (name, OPSET, os.path.getsize(model_path), " ".join(ops), " ".join(body_ops)))
    return proto


def main():
    gen = torch.Generator().manual_seed(7300)
    inputs = [torch.randn(BATCH, SEQ_LEN, D_MODEL, generator=gen) for _ in range(2)]
    loop_block = make_block(hf_style=False)
    hf_block = make_block(hf_style=True)
    # The two scripted scans are the same function: check that before exporting either.
    with torch.no_grad():
        a, b = loop_block(inputs[0]), hf_block(inputs[0])
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), float((a - b).abs().max())
    export_case("mamba_block_loop", loop_block, inputs)
    export_case("mamba_block_loop_hf", hf_block, inputs)


if __name__ == "__main__":
    main()
