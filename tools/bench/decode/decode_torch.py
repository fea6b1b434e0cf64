"""The PyTorch peers of seqrun's decode benchmark: minimal eager Llama and Mamba language models that carry their
state between calls (a KV cache; Mamba's convolution window and SSM state), on the weights of an HF-layout
checkpoint (Hugging Face parameter names). Written for Debian's torch 1.13 (no transformers).

Both expose the same interface:
  forward(ids [1, n], all_logits) -> logits [n, vocab] (all_logits) or [vocab] (the last position): feeds n tokens
      after the ones already fed; n = 1 is a decode step, n > 1 a prefill chunk.
  snapshot() / restore(s): the state after the tokens fed so far, and going back to it.
  reset(): back to the empty sequence.

LlamaDecoder follows transformers' LlamaForCausalLM (eager attention, RMSNorm, rotary embeddings with rope_theta
and no scaling, SiLU-gated MLP) with a preallocated KV cache [1, kv_heads, max_context, head_dim] per layer, written
in place (transformers' StaticCache; its default DynamicCache concatenates, which copies the cache every step).
MambaDecoder follows transformers' MambaMixer slow path: a step rolls the convolution window and updates the SSM
state [1, d_inner, d_state] in place of the scan; a prefill chunk runs the sequential reference scan (as
tools/bench/mamba/mamba_torch.py's selective_scan_ref: exp(Δ ⊗ A) and Δ·B·u as [b, d, l, n] tensors, then a Python
loop over l), started from the carried state.
"""
import torch
import torch.nn.functional as F


def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class LlamaDecoder:
    def __init__(self, cfg, tensors, max_context):
        self.w = tensors
        self.layers = cfg["num_hidden_layers"]
        self.heads = cfg["num_attention_heads"]
        self.kv_heads = cfg.get("num_key_value_heads") or self.heads
        self.head_dim = cfg.get("head_dim") or cfg["hidden_size"] // self.heads
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        if cfg.get("rope_scaling"):
            raise SystemExit("LlamaDecoder: rope_scaling is not supported (the benchmark checkpoint has none)")
        theta = cfg.get("rope_theta", 10000.0)
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.int64).float() / self.head_dim))
        self.lm_head = tensors["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else tensors["lm_head.weight"]
        self.max_context = max_context
        shape = (1, self.kv_heads, max_context, self.head_dim)
        self.k_cache = [torch.zeros(shape) for _ in range(self.layers)]
        self.v_cache = [torch.zeros(shape) for _ in range(self.layers)]
        self.length = 0

    def reset(self):
        self.length = 0  # cache entries past `length` are never read

    def snapshot(self):
        return self.length

    def restore(self, length):
        self.length = length  # the entries before it are unchanged: later calls write only past it

    def forward(self, ids, all_logits=False):
        n = ids.shape[1]
        start, end = self.length, self.length + n
        if end > self.max_context:
            raise RuntimeError(f"LlamaDecoder: context {end} exceeds the cache's {self.max_context} positions")
        hd, heads, kv_heads = self.head_dim, self.heads, self.kv_heads
        freqs = torch.arange(start, end, dtype=torch.float32)[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()  # [n, hd], broadcast over [1, heads, n, hd]
        mask = None
        if n > 1:  # query i (position start + i) sees keys 0 .. start + i
            mask = torch.triu(torch.full((n, end), float("-inf")), diagonal=start + 1)
        w = self.w
        h = w["model.embed_tokens.weight"][ids]  # [1, n, d]
        for i in range(self.layers):
            p = f"model.layers.{i}."
            x = rms_norm(h, w[p + "input_layernorm.weight"], self.eps)
            q = F.linear(x, w[p + "self_attn.q_proj.weight"]).view(1, n, heads, hd).transpose(1, 2)
            k = F.linear(x, w[p + "self_attn.k_proj.weight"]).view(1, n, kv_heads, hd).transpose(1, 2)
            v = F.linear(x, w[p + "self_attn.v_proj.weight"]).view(1, n, kv_heads, hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            self.k_cache[i][:, :, start:end] = k
            self.v_cache[i][:, :, start:end] = v
            keys = self.k_cache[i][:, :, :end]
            values = self.v_cache[i][:, :, :end]
            if kv_heads != heads:
                keys = keys.repeat_interleave(heads // kv_heads, dim=1)
                values = values.repeat_interleave(heads // kv_heads, dim=1)
            scores = torch.matmul(q, keys.transpose(2, 3)) * hd ** -0.5  # [1, heads, n, end]
            if mask is not None:
                scores = scores + mask
            attn = torch.matmul(F.softmax(scores, dim=-1), values).transpose(1, 2).reshape(1, n, heads * hd)
            h = h + F.linear(attn, w[p + "self_attn.o_proj.weight"])
            x = rms_norm(h, w[p + "post_attention_layernorm.weight"], self.eps)
            gate = F.silu(F.linear(x, w[p + "mlp.gate_proj.weight"])) * F.linear(x, w[p + "mlp.up_proj.weight"])
            h = h + F.linear(gate, w[p + "mlp.down_proj.weight"])
        self.length = end
        h = h[0] if all_logits else h[0, -1]
        return F.linear(rms_norm(h, w["model.norm.weight"], self.eps), self.lm_head)


class MambaDecoder:
    def __init__(self, cfg, tensors):
        self.w = tensors
        self.layers = cfg["num_hidden_layers"]
        self.d_inner = cfg["expand"] * cfg["hidden_size"]
        self.d_state = cfg["state_size"]
        self.d_conv = cfg["conv_kernel"]
        self.dt_rank = tensors["backbone.layers.0.mixer.dt_proj.weight"].shape[1]
        self.eps = cfg.get("layer_norm_epsilon", 1e-5)
        self.lm_head = tensors.get("lm_head.weight", tensors["backbone.embeddings.weight"])
        # Per layer: -exp(A_log) and the depthwise convolution's kernel as [d_inner, d_conv], computed once.
        self.A = [-torch.exp(tensors[f"backbone.layers.{i}.mixer.A_log"]) for i in range(self.layers)]
        self.conv_w = [tensors[f"backbone.layers.{i}.mixer.conv1d.weight"][:, 0, :] for i in range(self.layers)]
        # State per layer: the last d_conv inputs of the convolution and the SSM state.
        self.conv_state = [torch.zeros(1, self.d_inner, self.d_conv) for _ in range(self.layers)]
        self.ssm_state = [torch.zeros(1, self.d_inner, self.d_state) for _ in range(self.layers)]

    def reset(self):
        for t in self.conv_state + self.ssm_state:
            t.zero_()

    def snapshot(self):
        return [t.clone() for t in self.conv_state], [t.clone() for t in self.ssm_state]

    def restore(self, state):
        for dst, src in zip(self.conv_state + self.ssm_state, state[0] + state[1]):
            dst.copy_(src)

    def forward(self, ids, all_logits=False):
        w = self.w
        h = w["backbone.embeddings.weight"][ids]  # [1, n, d]
        for i in range(self.layers):
            p = f"backbone.layers.{i}."
            h = h + self.mixer(i, rms_norm(h, w[p + "norm.weight"], self.eps))
        h = h[0] if all_logits else h[0, -1]
        return F.linear(rms_norm(h, w["backbone.norm_f.weight"], self.eps), self.lm_head)

    def mixer(self, i, hidden):
        p = f"backbone.layers.{i}.mixer."
        w = self.w
        n = hidden.shape[1]
        x, z = F.linear(hidden, w[p + "in_proj.weight"]).transpose(1, 2).chunk(2, dim=1)  # [1, d_inner, n] each
        if n == 1:  # the step: roll the window, one dot product per channel
            state = self.conv_state[i]
            state.copy_(torch.roll(state, shifts=-1, dims=-1))
            state[:, :, -1] = x[:, :, 0]
            x = (torch.sum(state * self.conv_w[i], dim=-1) + w[p + "conv1d.bias"]).unsqueeze(-1)
        else:  # a chunk: the convolution over the carried window followed by the chunk
            padded = torch.cat((self.conv_state[i][:, :, 1:], x), dim=-1)
            self.conv_state[i].copy_(padded[:, :, -self.d_conv:])
            x = F.conv1d(padded, w[p + "conv1d.weight"], w[p + "conv1d.bias"], groups=self.d_inner)
        x = F.silu(x)  # [1, d_inner, n]
        dt, B, C = torch.split(F.linear(x.transpose(1, 2), w[p + "x_proj.weight"]),
                               [self.dt_rank, self.d_state, self.d_state], dim=-1)  # [1, n, *]
        delta = F.softplus(F.linear(dt, w[p + "dt_proj.weight"], w[p + "dt_proj.bias"])).transpose(1, 2)  # [1, d_inner, n]
        A = self.A[i]
        h = self.ssm_state[i]
        if n == 1:
            h.mul_(torch.exp(delta * A)).add_(delta * x * B)  # [1, d_inner, 1] x [1, 1, d_state]
            y = torch.matmul(h, C[0, 0]).unsqueeze(-1)  # [1, d_inner, 1]
        else:
            delta_A = torch.exp(torch.einsum("bdl,dn->bdln", delta, A))
            delta_B_u = torch.einsum("bdl,bnl,bdl->bdln", delta, B.transpose(1, 2), x)
            state = h
            ys = []
            for t in range(n):
                state = delta_A[:, :, t] * state + delta_B_u[:, :, t]
                ys.append(torch.einsum("bdn,bn->bd", state, C[:, t]))
            h.copy_(state)
            y = torch.stack(ys, dim=2)
        y = (y + x * w[p + "D"][None, :, None]) * F.silu(z)
        return F.linear(y.transpose(1, 2), w[p + "out_proj.weight"])


def make_decoder(cfg, tensors, max_context):
    arch = (cfg.get("architectures") or [""])[0]
    if arch == "LlamaForCausalLM" or cfg.get("model_type") == "llama":
        return LlamaDecoder(cfg, tensors, max_context)
    if arch == "MambaForCausalLM" or cfg.get("model_type") == "mamba":
        return MambaDecoder(cfg, tensors)
    raise SystemExit(f"no PyTorch decoder for architecture '{arch}' (known: LlamaForCausalLM, MambaForCausalLM)")
