#!/usr/bin/python3
# Regenerates tests/data/ssm/s4d/*: a PyTorch S4D layer (Gu et al. 2022, "On the Parameterization and
# Initialization of Diagonal State Space Models") whose scan is a torch.jit.script for-loop, exported with
# torch.onnx.export at opset 17 (the scripted loop becomes an ONNX Loop), in the ONNX backend-test layout.
#
# Run with Debian's interpreter (torch 1.13, onnx 1.12, numpy):
#     /usr/bin/python3 tests/reference/s4d_layer.py
# Weights and inputs come from fixed seeds, so a rerun rewrites identical files. tests/cmake/s4d.cmake runs
# `seqrun-export check` on the folder at -O0 and -O1 (where fuse-lti-scan must turn each S4D Loop into one LTIScan);
# tests/unit/test_lti_scan.cpp compares both levels with the float64 reference saved next to each data set.
#
# The layer, per channel h of H (state size N = 2·M, M complex modes), S4D-Lin initialization:
#   A = -exp(log_A_real) + i·A_imag       log_A_real = log(1/2), A_imag[m] = π·m
#   dt = exp(log_dt)                      log_dt uniform in [log 1e-3, log 1e-1]
#   dA = exp(dt·A),  dB = (dA - 1) / A · B     (zero-order hold)
#   h_t = dA ⊙ h_{t-1} + dB · u_t,  y_t = 2·Re(Σ_m C_m h_t[m]) + D·u_t
#   then GELU and the position-wise output projection Conv1d(H, 2H, 1) + GLU, as in the paper's S4D block.
#
# Why the recurrent form and not the convolution-kernel form: the recurrence is what carries over to decoding
# (one step with explicit state) and it is the form in which "time-invariant" is something a pass can prove:
# the Loop body's coefficients dA, dB, C are loop-invariant captures, while u is sliced at the iteration number.
# From that the pass knows the loop is an LTI system and the kernel may run it as an FFT convolution.
# A kernel-form export (K = 2·Re(C·dB·dA^l) built from Pow/Range ops, then a causal conv) would hand the pass
# a finished convolution with no state to carry and nothing left to decide.
#
# ONNX has no complex dtype, so the scan keeps the real and imaginary parts of the state as two loop-carried
# tensors and writes the complex products out:
#   re' = dA_re·re - dA_im·im + dB_re·u_t,   im' = dA_re·im + dA_im·re + dB_im·u_t,
#   y_t = 2·Σ_m (C_re·re' - C_im·im').
# The discretization (exp, cos, sin, the complex division) depends on parameters only: torch.onnx leaves it
# in the graph, seqrun's plan folds it into constants. Shapes are static (no dynamic axes): the trip count is a
# constant and the ScatterND indices evaluate to numbers, which the pass needs. The float64 reference is
# computed independently: complex128 tensors, the convolution kernel K_l = 2·Re(Σ_m C_m dB_m dA_m^l) and a
# direct causal sum (no recurrence, no FFT). A third model, s4d_gated_loop, scales the decay by sigmoid(u_t)
# at every step: the same body shape, not time-invariant, which the pass must leave alone.
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
S4D_DIR = os.path.join(REPO_ROOT, "tests", "data", "ssm", "s4d")
OPSET = 17

H, N_STATE = 32, 64  # channels, state size (N_STATE / 2 complex modes)
MODES = N_STATE // 2

torch.set_num_threads(1)
warnings.filterwarnings("ignore")  # torch.onnx's warnings about scripting inside a traced module


@torch.jit.script
def s4d_scan(u: torch.Tensor, dA_re: torch.Tensor, dA_im: torch.Tensor, dB_re: torch.Tensor,
             dB_im: torch.Tensor, C_re: torch.Tensor, C_im: torch.Tensor) -> torch.Tensor:
    """u [b, h, l]; dA, dB, C [h, m] (real and imaginary parts) -> 2·Re(Σ_m C h_t) [b, h, l]."""
    batch, channels, seqlen = u.shape[0], u.shape[1], u.shape[2]
    h_re = torch.zeros(batch, channels, dA_re.shape[1], dtype=u.dtype)
    h_im = torch.zeros(batch, channels, dA_re.shape[1], dtype=u.dtype)
    y = torch.zeros(batch, channels, seqlen, dtype=u.dtype)
    for t in range(seqlen):
        u_t = u[:, :, t].unsqueeze(-1)  # [b, h, 1]
        next_re = dA_re * h_re - dA_im * h_im + dB_re * u_t
        next_im = dA_re * h_im + dA_im * h_re + dB_im * u_t
        h_re = next_re
        h_im = next_im
        y[:, :, t] = 2.0 * (C_re * h_re - C_im * h_im).sum(-1)
    return y


class S4DLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.log_dt = nn.Parameter(torch.zeros(H))
        self.log_A_real = nn.Parameter(torch.full((H, MODES), float(np.log(0.5))))
        self.A_imag = nn.Parameter(np.pi * torch.arange(MODES, dtype=torch.float32).repeat(H, 1))
        self.B_re = nn.Parameter(torch.ones(H, MODES))
        self.B_im = nn.Parameter(torch.zeros(H, MODES))
        self.C_re = nn.Parameter(torch.zeros(H, MODES))
        self.C_im = nn.Parameter(torch.zeros(H, MODES))
        self.D = nn.Parameter(torch.zeros(H))
        self.output_linear = nn.Conv1d(H, 2 * H, kernel_size=1)

    def discretize(self):
        """ZOH: (dA, dB) as real and imaginary parts, [H, M] each."""
        dt = torch.exp(self.log_dt)[:, None]
        A_re, A_im = -torch.exp(self.log_A_real), self.A_imag
        magnitude = torch.exp(dt * A_re)
        dA_re, dA_im = magnitude * torch.cos(dt * A_im), magnitude * torch.sin(dt * A_im)
        # (dA - 1) / A = (dA - 1)·conj(A) / |A|²
        norm = A_re * A_re + A_im * A_im
        q_re = ((dA_re - 1.0) * A_re + dA_im * A_im) / norm
        q_im = (dA_im * A_re - (dA_re - 1.0) * A_im) / norm
        dB_re = q_re * self.B_re - q_im * self.B_im
        dB_im = q_re * self.B_im + q_im * self.B_re
        return dA_re, dA_im, dB_re, dB_im

    def forward(self, u):  # [batch, H, L]
        dA_re, dA_im, dB_re, dB_im = self.discretize()
        y = s4d_scan(u, dA_re, dA_im, dB_re, dB_im, self.C_re, self.C_im)
        y = y + u * self.D[None, :, None]
        return F.glu(self.output_linear(F.gelu(y)), dim=-2)

    def reference_f64(self, u):
        """The same layer in complex128, as a convolution: K_l = 2·Re(Σ_m C_m dB_m dA_m^l), y = K * u."""
        with torch.no_grad():
            u = u.double()
            dt = torch.exp(self.log_dt.double())[:, None]
            A = torch.complex(-torch.exp(self.log_A_real.double()), self.A_imag.double())
            B = torch.complex(self.B_re.double(), self.B_im.double())
            C = torch.complex(self.C_re.double(), self.C_im.double())
            dA = torch.exp(dt * A)
            dB = (dA - 1.0) / A * B
            L = u.shape[-1]
            powers = dA[:, :, None] ** torch.arange(L, dtype=torch.float64)  # [H, M, L]
            K = 2.0 * torch.einsum("hm,hml->hl", C * dB, powers).real  # [H, L]
            y = torch.zeros_like(u)
            for lag in range(L):  # causal: y[..., t] += K[lag] · u[..., t - lag]
                y[:, :, lag:] += K[None, :, lag, None] * u[:, :, :L - lag]
            y = y + u * self.D.double()[None, :, None]
            out = F.conv1d(F.gelu(y), self.output_linear.weight.double(), self.output_linear.bias.double())
            return F.glu(out, dim=-2)


def make_layer():
    torch.manual_seed(5100)
    layer = S4DLayer()
    gen = torch.Generator().manual_seed(5200)
    with torch.no_grad():
        # S4D-Lin: dt log-uniform in [1e-3, 1e-1], C ~ N(0, 1/2) per part, B = 1 (perturbed a little so a
        # kernel that ignored B would fail), D ~ N(0, 1).
        layer.log_dt.copy_(torch.rand(H, generator=gen) * (np.log(0.1) - np.log(1e-3)) + np.log(1e-3))
        layer.C_re.copy_(torch.randn(H, MODES, generator=gen) * np.sqrt(0.5))
        layer.C_im.copy_(torch.randn(H, MODES, generator=gen) * np.sqrt(0.5))
        layer.B_re.add_(0.1 * torch.randn(H, MODES, generator=gen))
        layer.B_im.add_(0.1 * torch.randn(H, MODES, generator=gen))
        layer.D.copy_(torch.randn(H, generator=gen))
        w = layer.output_linear.weight
        w.copy_(torch.randn(w.shape, generator=gen) / np.sqrt(H))
        layer.output_linear.bias.copy_(0.1 * torch.randn(2 * H, generator=gen))
    return layer.eval()


@torch.jit.script
def gated_scan(u: torch.Tensor, dA_re: torch.Tensor, dA_im: torch.Tensor, dB_re: torch.Tensor,
               dB_im: torch.Tensor, C_re: torch.Tensor, C_im: torch.Tensor) -> torch.Tensor:
    """s4d_scan with the decay scaled by sigmoid(u_t) at every step: the same complex recurrence, not LTI."""
    batch, channels, seqlen = u.shape[0], u.shape[1], u.shape[2]
    h_re = torch.zeros(batch, channels, dA_re.shape[1], dtype=u.dtype)
    h_im = torch.zeros(batch, channels, dA_re.shape[1], dtype=u.dtype)
    y = torch.zeros(batch, channels, seqlen, dtype=u.dtype)
    for t in range(seqlen):
        u_t = u[:, :, t].unsqueeze(-1)
        a_re = dA_re * torch.sigmoid(u_t)  # the decay at step t
        a_im = dA_im * torch.sigmoid(u_t)
        next_re = a_re * h_re - a_im * h_im + dB_re * u_t
        next_im = a_re * h_im + a_im * h_re + dB_im * u_t
        h_re = next_re
        h_im = next_im
        y[:, :, t] = 2.0 * (C_re * h_re - C_im * h_im).sum(-1)
    return y


class GatedS4DLayer(S4DLayer):
    """A look-alike the fusion must leave alone: the decay varies with time (a selective-scan variant)."""

    def forward(self, u):
        dA_re, dA_im, dB_re, dB_im = self.discretize()
        y = gated_scan(u, dA_re, dA_im, dB_re, dB_im, self.C_re, self.C_im)
        y = y + u * self.D[None, :, None]
        return F.glu(self.output_linear(F.gelu(y)), dim=-2)

    def reference_f64(self, u):
        """No convolution form: the same layer run in float64."""
        with torch.no_grad():
            out = self.double()(u.double())
            self.float()
            return out


def write_tensor(path, array, name):
    with open(path, "wb") as f:
        f.write(onnx.numpy_helper.from_array(array, name).SerializeToString())


def export_case(name, layer, inputs):
    """Exports `layer` with the static shape of inputs[0] (every set has that shape) and writes
    test_data_set_K/{input_0, output_0, reference_f64_0}.pb for each input."""
    folder = os.path.join(S4D_DIR, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    buffer = io.BytesIO()
    torch.onnx.export(layer, (inputs[0],), buffer, opset_version=OPSET, input_names=["u"], output_names=["y"],
                      do_constant_folding=True)
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    ops = sorted({n.op_type for n in proto.graph.node})
    assert "Loop" in ops, ops  # the scripted for-loop must stay a loop
    loop = next(n for n in proto.graph.node if n.op_type == "Loop")
    body_ops = sorted({n.op_type for n in loop.attribute[0].g.node})
    assert "ScatterND" in body_ops and "Gather" in body_ops, body_ops
    model_path = os.path.join(folder, "model.onnx")
    onnx.save(proto, model_path)
    for set_index, u in enumerate(inputs):
        assert u.shape == inputs[0].shape
        data_dir = os.path.join(folder, "test_data_set_%d" % set_index)
        os.makedirs(data_dir)
        with torch.no_grad():
            out = layer(u)
        out_f64 = layer.reference_f64(u)
        # The float32 model against the float64 reference: the same function up to float32 rounding.
        err = float((out.double() - out_f64).abs().max() / out_f64.abs().max())
        assert err < 1e-5, err
        write_tensor(os.path.join(data_dir, "input_0.pb"), u.numpy(), "u")
        write_tensor(os.path.join(data_dir, "output_0.pb"), out.numpy(), "y")
        write_tensor(os.path.join(data_dir, "reference_f64_0.pb"), out_f64.numpy(), "y")
        print("%s set %d: u %s  max |y| %.3f  float32 vs float64: max |diff| / max |y| = %.2e"
              % (name, set_index, list(u.shape), float(out_f64.abs().max()), err))
    print("%s: opset %d, %d bytes, ops: %s; loop body: %s"
          % (name, OPSET, os.path.getsize(model_path), " ".join(ops), " ".join(body_ops)))


def main():
    layer = make_layer()
    # The scripted recurrence in float64 and the complex128 convolution are the same function.
    with torch.no_grad():
        u = torch.randn(2, H, 300, generator=torch.Generator().manual_seed(5400), dtype=torch.float64)
        err64 = float((layer.double()(u) - layer.reference_f64(u)).abs().max())
        layer.float()
    assert err64 < 1e-10, err64
    gen = torch.Generator().manual_seed(5300)
    short = [torch.randn(2, H, 64, generator=gen) for _ in range(2)]
    long = [torch.randn(1, H, 1024, generator=gen)]
    export_case("s4d_layer_loop", layer, short)
    export_case("s4d_layer_loop_long", layer, long)
    gated = GatedS4DLayer()
    gated.load_state_dict(layer.state_dict())
    export_case("s4d_gated_loop", gated.eval(), short[:1])


if __name__ == "__main__":
    main()
