"""Mamba (v1) in plain PyTorch for seqrun's Mamba benchmarks: the mixer ("Mamba block"), two selective scans,
and a MambaForCausalLM-shaped model with Hugging Face parameter names.

  selective_scan_ref   the sequential reference scan, computed the way mamba_ssm's selective_scan_ref does
                       it: softplus(Δ + bias), exp(Δ ⊗ A) and Δ·B·u for all steps as [b, d, l, n] tensors,
                       then a Python loop over l (h = ΔA_t h + ΔBu_t, y_t = C_t·h), D skip, SiLU(z) gate.
  selective_scan_loop  the same function as a torch.jit.script for-loop that discretizes step t inside the
                       body (nothing of size b·d·l·n): torch.onnx.export turns it into an ONNX Loop whose
                       body reads step t with Gather and writes y[:, :, t] with ScatterND, the form
                       seqrun's fuse-ssm-scan pass rewrites into one SelectiveScan node.
Layouts follow mamba_ssm: u, Δ, z, y [b, d, l]; A [d, n]; B, C [b, n, l]; D, Δ bias [d].
Written for Debian's torch 1.13 (no transformers, no mamba_ssm).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def selective_scan_ref(u, delta, A, B, C, D, z, delta_bias):
    batch, dim, seqlen = u.shape
    delta = F.softplus(delta + delta_bias[None, :, None])
    delta_A = torch.exp(torch.einsum("bdl,dn->bdln", delta, A))
    delta_B_u = torch.einsum("bdl,bnl,bdl->bdln", delta, B, u)
    h = u.new_zeros(batch, dim, A.shape[1])
    ys = []
    for t in range(seqlen):
        h = delta_A[:, :, t] * h + delta_B_u[:, :, t]
        ys.append(torch.einsum("bdn,bn->bd", h, C[:, :, t]))
    y = torch.stack(ys, dim=2) + u * D[None, :, None]
    return y * F.silu(z)


@torch.jit.script
def selective_scan_loop(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                        D: torch.Tensor, z: torch.Tensor, delta_bias: torch.Tensor) -> torch.Tensor:
    batch, dim, seqlen = u.shape[0], u.shape[1], u.shape[2]
    delta = torch.nn.functional.softplus(delta + delta_bias[None, :, None])
    h = torch.zeros(batch, dim, A.shape[1], dtype=u.dtype)
    y = torch.zeros(batch, dim, seqlen, dtype=u.dtype)
    for t in range(seqlen):
        delta_t = delta[:, :, t]
        decay = torch.exp(delta_t.unsqueeze(-1) * A)  # [b, d, n]
        inject = (delta_t * u[:, :, t]).unsqueeze(-1) * B[:, :, t].unsqueeze(1)  # [b, d, n]
        h = decay * h + inject
        y[:, :, t] = (h * C[:, :, t].unsqueeze(1)).sum(-1)
    y = y + u * D[None, :, None]
    return y * torch.nn.functional.silu(z)


SCANS = {"ref": selective_scan_ref, "loop": selective_scan_loop}


class MambaMixer(nn.Module):
    """Mamba's mixer (the "Mamba block"): hidden [b, l, d_model] -> [b, l, d_model]. Parameter names as in
    Hugging Face's MambaMixer: in_proj, conv1d, x_proj, dt_proj, A_log, D, out_proj."""

    def __init__(self, d_model, d_state=16, expand=2, d_conv=4, dt_rank=None, scan="ref"):
        super().__init__()
        self.d_inner = expand * d_model
        self.d_state = d_state
        self.dt_rank = dt_rank if dt_rank is not None else math.ceil(d_model / 16)
        self.scan = scan
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1,
                                bias=True)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        self.A_log = nn.Parameter(torch.zeros(self.d_inner, d_state))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

    def forward(self, hidden):
        seqlen = hidden.shape[1]
        x, z = self.in_proj(hidden).transpose(1, 2).chunk(2, dim=1)  # [b, d_inner, l] each
        x = F.silu(self.conv1d(x)[..., :seqlen])
        dt, B, C = torch.split(self.x_proj(x.transpose(1, 2)), [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.linear(dt, self.dt_proj.weight).transpose(1, 2)  # [b, d_inner, l]; the bias goes to the scan
        A = -torch.exp(self.A_log)
        y = SCANS[self.scan](x, delta, A, B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous(), self.D,
                             z, self.dt_proj.bias)
        return self.out_proj(y.transpose(1, 2))


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class MambaBlockLayer(nn.Module):
    def __init__(self, cfg, scan):
        super().__init__()
        self.norm = RMSNorm(cfg["hidden_size"], cfg["layer_norm_epsilon"])
        self.mixer = MambaMixer(cfg["hidden_size"], cfg["state_size"], cfg["expand"], cfg["conv_kernel"],
                                cfg["time_step_rank"], scan)

    def forward(self, h):
        return h + self.mixer(self.norm(h))


class MambaBackbone(nn.Module):
    def __init__(self, cfg, scan):
        super().__init__()
        self.embeddings = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList([MambaBlockLayer(cfg, scan) for _ in range(cfg["num_hidden_layers"])])
        self.norm_f = RMSNorm(cfg["hidden_size"], cfg["layer_norm_epsilon"])


class MambaForCausalLM(nn.Module):
    """Hugging Face's MambaForCausalLM (slow path) with a tied lm_head: input_ids [b, l] -> logits [b, l, vocab]."""

    def __init__(self, cfg, scan="ref"):
        super().__init__()
        self.backbone = MambaBackbone(cfg, scan)

    def forward(self, input_ids):
        h = self.backbone.embeddings(input_ids)
        for layer in self.backbone.layers:
            h = layer(h)
        return F.linear(self.backbone.norm_f(h), self.backbone.embeddings.weight)


def init_mixer_(mixer, gen):
    """Mamba's initialization in spirit, from a seeded generator: A_log = log(1..N) plus noise, Δ bias =
    softplus^-1 of a step size in [1e-3, 1e-1], D near 1, projections ~ N(0, 1/fan_in), conv weights ~ 0.5 N(0, 1)."""
    with torch.no_grad():
        d_inner, n = mixer.A_log.shape
        mixer.A_log.copy_(torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(d_inner, 1)
                          + 0.1 * torch.randn(d_inner, n, generator=gen))
        dt = torch.exp(torch.rand(d_inner, generator=gen) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
        mixer.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        mixer.D.copy_(1.0 + 0.1 * torch.randn(d_inner, generator=gen))
        for lin in (mixer.in_proj, mixer.x_proj, mixer.dt_proj, mixer.out_proj):
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=gen) / math.sqrt(lin.weight.shape[1]))
        mixer.conv1d.weight.copy_(0.5 * torch.randn(mixer.conv1d.weight.shape, generator=gen))
        mixer.conv1d.bias.copy_(0.1 * torch.randn(mixer.conv1d.bias.shape, generator=gen))


def init_model_(model, gen):
    with torch.no_grad():
        model.backbone.embeddings.weight.copy_(torch.randn(model.backbone.embeddings.weight.shape, generator=gen))
        for layer in model.backbone.layers:
            layer.norm.weight.copy_(1.0 + 0.1 * torch.randn(layer.norm.weight.shape, generator=gen))
            init_mixer_(layer.mixer, gen)
        model.backbone.norm_f.weight.copy_(1.0 + 0.1 * torch.randn(model.backbone.norm_f.weight.shape, generator=gen))


# Mamba-130M's shape (state-spaces/mamba-130m-hf config.json).
MAMBA_130M_CONFIG = {
    "architectures": ["MambaForCausalLM"], "model_type": "mamba", "vocab_size": 50280, "hidden_size": 768,
    "state_size": 16, "num_hidden_layers": 24, "layer_norm_epsilon": 1e-5, "expand": 2, "conv_kernel": 4,
    "use_bias": False, "use_conv_bias": True, "hidden_act": "silu", "time_step_rank": 48,
    "residual_in_fp32": True, "tie_word_embeddings": True, "bos_token_id": 0, "eos_token_id": 0,
    "pad_token_id": 0, "torch_dtype": "float32",
}
