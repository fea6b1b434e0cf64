#!/usr/bin/python3
# Regenerates tests/data/models/*: small PyTorch models exported with torch.onnx.export, with PyTorch's own
# outputs saved in the ONNX backend-test layout (model.onnx + test_data_set_K/{input,output}_N.pb).
#
# Run from anywhere with Debian's interpreter (torch 1.13, onnx 1.12, numpy):
#     /usr/bin/python3 tests/reference/export_models.py
# Every model and input comes from a fixed seed, so a rerun rewrites byte-identical files. The saved outputs
# are exactly what eager PyTorch computed for the saved inputs (float32 on CPU); `seqrun-export check
# tests/data/models` compares seqrun against them. See tests/reference/README.md for what each model covers.
import io
import math
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
MODELS_DIR = os.path.join(REPO_ROOT, "tests", "data", "models")
MAX_MODEL_BYTES = 1 << 20  # each model.onnx (weights included) stays under 1 MiB
MAX_TOTAL_BYTES = 6 << 20  # everything under tests/data/models stays under 6 MiB

torch.set_num_threads(1)
warnings.filterwarnings("ignore")  # torch.onnx's tracer warnings about shape-as-int; the graphs are checked below


# --------------------------------------------------------------------------------------------------
# 1. Vision / OCR-style networks (old opsets 9, 11, 13)
# --------------------------------------------------------------------------------------------------
def conv_bn(in_ch, out_ch, kernel, stride=1, padding=0, groups=1, act=None):
    layers = [
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=padding, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


class HandSelfAttention(nn.Module):
    """Multi-head self-attention written with matmul/softmax: x [N, T, D] -> [N, T, D]."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):
        n, t, d = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q = q.reshape(n, t, self.heads, self.head_dim).permute(0, 2, 1, 3)
        k = k.reshape(n, t, self.heads, self.head_dim).permute(0, 2, 3, 1)  # already transposed for q @ k
        v = v.reshape(n, t, self.heads, self.head_dim).permute(0, 2, 1, 3)
        scores = torch.matmul(q, k) / math.sqrt(self.head_dim)
        probs = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(n, t, d)
        return self.out(ctx)


class TorchSelfAttention(nn.Module):
    """The same block through nn.MultiheadAttention (batch_first)."""

    def __init__(self, dim, heads):
        super().__init__()
        self.mha = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x):
        return self.mha(x, x, x, need_weights=False)[0]


class OcrNet(nn.Module):
    """CRNN/ViT-style recognizer: conv stem -> feature map -> sequence over width -> attention -> per-step
    log-probabilities. Input [N, 3, 32, 64]; output [N, 16, num_classes]."""

    def __init__(self, attention="hand", resize_modes=("nearest", "bilinear"), num_classes=20):
        super().__init__()
        self.resize_modes = resize_modes
        self.stem = conv_bn(3, 16, 3, padding=1, act=nn.ReLU())  # 32x64
        self.down = conv_bn(16, 32, 3, stride=2, padding=1, act=nn.Hardswish())  # 16x32
        self.pool = nn.MaxPool2d(2)  # 8x16
        self.depthwise = conv_bn(32, 32, 3, padding=1, groups=32, act=nn.ReLU6())
        self.pointwise = conv_bn(32, 32, 1)
        # Squeeze-and-excitation: global pool -> flatten -> fc -> sigmoid channel gate.
        self.se_pool = nn.AdaptiveAvgPool2d(1)
        self.se_fc1 = nn.Linear(32, 8)
        self.se_fc2 = nn.Linear(8, 32)
        # Coarse context branch (4x8), upsampled back to 8x16 once per resize mode and concatenated.
        self.context = nn.Sequential(nn.Conv2d(32, 16, 3, stride=2, padding=1), nn.ReLU())
        self.fuse = conv_bn(32 + 16 * len(resize_modes), 32, 1, act=nn.ReLU())
        self.collapse = nn.Conv2d(32, 32, (3, 1), stride=(2, 1), padding=(1, 0))  # 8x16 -> 4x16
        self.proj = nn.Linear(32 * 4, 32)
        self.norm1 = nn.LayerNorm(32)
        self.attn = HandSelfAttention(32, 2) if attention == "hand" else TorchSelfAttention(32, 2)
        self.norm2 = nn.LayerNorm(32)
        self.ffn1 = nn.Linear(32, 64)
        self.dropout = nn.Dropout(0.1)
        self.ffn2 = nn.Linear(64, 32)
        self.norm3 = nn.LayerNorm(32)
        self.classifier = nn.Linear(32, num_classes)

    def forward(self, image):
        x = self.pool(self.down(self.stem(image)))
        x = x + self.pointwise(self.depthwise(x))  # residual
        gate = torch.sigmoid(self.se_fc2(F.relu(self.se_fc1(torch.flatten(self.se_pool(x), 1)))))
        x = x * gate.reshape(gate.shape[0], 32, 1, 1)
        ctx = self.context(x)
        branches = [x]
        for mode in self.resize_modes:
            if mode == "nearest":
                branches.append(F.interpolate(ctx, scale_factor=2.0, mode="nearest"))
            else:
                branches.append(F.interpolate(ctx, scale_factor=2.0, mode="bilinear", align_corners=False))
        x = self.fuse(torch.cat(branches, dim=1))
        x = torch.clamp(self.collapse(x), -4.0, 4.0)  # [N, 32, 4, 16]
        n, c, h, w = x.shape
        seq = x.permute(0, 3, 1, 2).reshape(n, w, c * h)  # sequence over width: [N, 16, 128]
        s = self.proj(seq)
        s = s + self.attn(self.norm1(s))
        a = self.ffn1(self.norm2(s))
        s = s + self.ffn2(self.dropout(a * torch.sigmoid(a)))  # SiLU written as x * sigmoid(x)
        return F.log_softmax(self.classifier(self.norm3(s)), dim=-1)


def randomize_batchnorm_stats(model, gen):
    """Fresh BatchNorm layers are identities in eval mode; give them real statistics and affine params."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            c = module.num_features
            module.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
            module.running_var.copy_(torch.rand(c, generator=gen) * 0.8 + 0.6)
            with torch.no_grad():
                module.weight.copy_(torch.rand(c, generator=gen) * 0.8 + 0.6)
                module.bias.copy_(torch.randn(c, generator=gen) * 0.1)


def insert_dropout_after_input(model_proto, opset):
    """torch 1.13 drops eval-mode Dropout from the graph; older exporters left it in. Put one Dropout
    (identity at inference) between the first graph input and its consumers so the importer sees it."""
    graph = model_proto.graph
    source = graph.input[0].name
    dropped = source + "_dropout"
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == source:
                node.input[i] = dropped
    if opset < 12:
        # Dropout-7/10: ratio attribute, optional mask output (left unused here).
        node = onnx.helper.make_node("Dropout", [source], [dropped, source + "_dropout_mask"],
                                     name="/input_dropout/Dropout", ratio=0.1)
    else:
        # Dropout-12/13: ratio is an optional input; training_mode absent means inference.
        ratio = onnx.helper.make_tensor("input_dropout_ratio", onnx.TensorProto.FLOAT, [], [0.1])
        graph.initializer.append(ratio)
        node = onnx.helper.make_node("Dropout", [source, "input_dropout_ratio"], [dropped],
                                     name="/input_dropout/Dropout")
    graph.node.insert(0, node)


# --------------------------------------------------------------------------------------------------
# 2. Decoder-only transformers (opsets 14 and 17)
# --------------------------------------------------------------------------------------------------
class Gpt2Block(nn.Module):
    def __init__(self, dim, heads, gelu_approximate):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.gelu_approximate = gelu_approximate
        self.ln_1 = nn.LayerNorm(dim)
        self.c_attn = nn.Linear(dim, 3 * dim)
        self.c_proj = nn.Linear(dim, dim)
        self.ln_2 = nn.LayerNorm(dim)
        self.c_fc = nn.Linear(dim, 4 * dim)
        self.mlp_proj = nn.Linear(4 * dim, dim)

    def forward(self, h, causal_mask):
        b, t, d = h.shape
        q, k, v = self.c_attn(self.ln_1(h)).split(d, dim=2)
        q = q.view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = k.view(b, t, self.heads, self.head_dim).transpose(1, 2)
        v = v.view(b, t, self.heads, self.head_dim).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))
        scores = scores.masked_fill(causal_mask, float("-inf"))
        attn = torch.matmul(torch.softmax(scores, dim=-1), v)
        h = h + self.c_proj(attn.transpose(1, 2).reshape(b, t, d))
        return h + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(h)), approximate=self.gelu_approximate))


class Gpt2(nn.Module):
    """GPT-2-style causal LM: token + learned position embeddings, pre-LN blocks, final LayerNorm,
    LM head tied to the token embedding. ids [1, T] int64 -> logits [1, T, vocab]."""

    def __init__(self, vocab=256, positions=32, dim=64, heads=4, layers=2, gelu_approximate="tanh"):
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.wpe = nn.Embedding(positions, dim)
        self.blocks = nn.ModuleList([Gpt2Block(dim, heads, gelu_approximate) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(dim)
        with torch.no_grad():
            self.wte.weight.mul_(0.5)
            self.wpe.weight.mul_(0.1)

    def forward(self, input_ids):
        t = input_ids.shape[1]
        positions = torch.arange(t, dtype=torch.long).unsqueeze(0)
        h = self.wte(input_ids) + self.wpe(positions)
        causal_mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)  # True above the diagonal
        for block in self.blocks:
            h = block(h, causal_mask)
        return F.linear(self.ln_f(h), self.wte.weight)  # tied head


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    x1 = x[..., :half]
    x2 = x[..., half:]
    return torch.cat((-x2, x1), dim=-1)


class LlamaBlock(nn.Module):
    """Pre-RMSNorm decoder block: grouped-query attention with rotary positions, SwiGLU MLP."""

    def __init__(self, dim, q_heads, kv_heads, hidden, kv_repeat):
        super().__init__()
        self.q_heads = q_heads
        self.kv_heads = kv_heads
        self.head_dim = dim // q_heads
        self.kv_repeat = kv_repeat
        self.input_layernorm = RMSNorm(dim)
        self.q_proj = nn.Linear(dim, q_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(dim, kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(dim, kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(q_heads * self.head_dim, dim, bias=False)
        self.post_attention_layernorm = RMSNorm(dim)
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def repeat_kv(self, x):
        n_rep = self.q_heads // self.kv_heads
        if self.kv_repeat == "repeat_interleave":
            return torch.repeat_interleave(x, n_rep, dim=1)
        b, kv, t, hd = x.shape  # HF's expand + reshape
        return x[:, :, None, :, :].expand(b, kv, n_rep, t, hd).reshape(b, kv * n_rep, t, hd)

    def forward(self, h, cos, sin, mask):
        b, t, _ = h.shape
        x = self.input_layernorm(h)
        q = self.q_proj(x).view(b, t, self.q_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        if self.kv_repeat == "repeat_interleave":
            # Repeat before the rotation (same result: rotary acts per head). After the rotation torch
            # 1.13 no longer knows k's head count and exports repeat_interleave as a Loop over sequences.
            k = self.repeat_kv(k)
            v = self.repeat_kv(v)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.kv_repeat != "repeat_interleave":
            k = self.repeat_kv(k)
            v = self.repeat_kv(v)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim) + mask
        probs = F.softmax(scores, dim=-1, dtype=torch.float32)
        attn = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, -1)
        h = h + self.o_proj(attn)
        x = self.post_attention_layernorm(h)
        return h + self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Llama(nn.Module):
    """Llama-style causal LM: embeddings, decoder blocks, final RMSNorm, untied LM head.
    ids [1, T] int64 -> logits [1, T, vocab]."""

    def __init__(self, vocab=256, dim=64, q_heads=4, kv_heads=2, hidden=128, layers=2,
                 kv_repeat="expand", rotary_outer="broadcast"):
        super().__init__()
        self.rotary_outer = rotary_outer
        head_dim = dim // q_heads
        self.embed_tokens = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList([LlamaBlock(dim, q_heads, kv_heads, hidden, kv_repeat) for _ in range(layers)])
        self.norm = RMSNorm(dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        inv_freq = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2).float() / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, RMSNorm):
                    module.weight.uniform_(0.7, 1.3)

    def forward(self, input_ids):
        h = self.embed_tokens(input_ids)
        cos, sin, mask = rotary_and_causal_mask(input_ids.shape[1], self.inv_freq, self.rotary_outer)
        for layer in self.layers:
            h = layer(h, cos, sin, mask)
        return self.lm_head(self.norm(h))


class LlamaBlockOnly(nn.Module):
    """One Llama decoder block on hidden states: h [1, T, 64] float -> [1, T, 64]."""

    def __init__(self, dim=64, q_heads=4, kv_heads=2, hidden=128, kv_repeat="repeat_interleave",
                 rotary_outer="einsum"):
        super().__init__()
        self.rotary_outer = rotary_outer
        head_dim = dim // q_heads
        self.block = LlamaBlock(dim, q_heads, kv_heads, hidden, kv_repeat)
        inv_freq = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2).float() / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, RMSNorm):
                    module.weight.uniform_(0.7, 1.3)

    def forward(self, hidden_states):
        cos, sin, mask = rotary_and_causal_mask(hidden_states.shape[1], self.inv_freq, self.rotary_outer)
        return self.block(hidden_states, cos, sin, mask)


def rotary_and_causal_mask(t, inv_freq, rotary_outer):
    """HF-style rotary tables cos/sin [1, 1, T, head_dim] and the additive causal mask [1, 1, T, T]."""
    positions = torch.arange(t, dtype=torch.float32)
    if rotary_outer == "einsum":
        freqs = torch.einsum("i,j->ij", positions, inv_freq)
    else:
        freqs = positions[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)  # [T, head_dim]
    cos = emb.cos()[None, None, :, :]
    sin = emb.sin()[None, None, :, :]
    min_value = torch.finfo(torch.float32).min
    mask = torch.triu(torch.full((t, t), min_value), diagonal=1)[None, None, :, :]
    return cos, sin, mask


# --------------------------------------------------------------------------------------------------
# 3. Encoder with a padding mask (opset 14)
# --------------------------------------------------------------------------------------------------
class PaddedEncoder(nn.Module):
    """Two nn.TransformerEncoderLayer (batch_first; post-norm ReLU, then pre-norm GELU) with a bool
    key_padding_mask (True = padding), plus a masked mean over the valid positions.
    x [N, T, 32], key_padding_mask [N, T] bool -> (hidden [N, T, 32], pooled [N, 32])."""

    def __init__(self, dim=32, heads=4, ff=64):
        super().__init__()
        self.layer1 = nn.TransformerEncoderLayer(dim, heads, ff, dropout=0.1, batch_first=True)
        self.layer2 = nn.TransformerEncoderLayer(dim, heads, ff, dropout=0.1, batch_first=True,
                                                 norm_first=True, activation="gelu")

    def forward(self, x, key_padding_mask):
        h = self.layer1(x, src_key_padding_mask=key_padding_mask)
        h = self.layer2(h, src_key_padding_mask=key_padding_mask)
        valid = (~key_padding_mask).unsqueeze(-1).to(h.dtype)
        pooled = (h * valid).sum(dim=1) / valid.sum(dim=1)
        return h, pooled


# --------------------------------------------------------------------------------------------------
# Export + reference data
# --------------------------------------------------------------------------------------------------
def to_numpy_outputs(result):
    outputs = result if isinstance(result, (tuple, list)) else (result,)
    return [o.detach().cpu().numpy() for o in outputs]


def write_tensor(path, array, name):
    with open(path, "wb") as f:
        f.write(onnx.numpy_helper.from_array(array, name).SerializeToString())


def export_case(name, model, input_sets, input_names, output_names, opset, dynamic_axes=None,
                training=torch.onnx.TrainingMode.EVAL, post_process=None):
    """Exports `model` traced on input_sets[0] and writes one test_data_set_K per entry of input_sets.
    Reference outputs come from eager PyTorch with autograd on, i.e. the same (non fast-path) math the
    tracer recorded."""
    model.eval()
    folder = os.path.join(MODELS_DIR, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)

    buffer = io.BytesIO()
    torch.onnx.export(model, tuple(input_sets[0]), buffer, opset_version=opset, input_names=input_names,
                      output_names=output_names, dynamic_axes=dynamic_axes, training=training,
                      do_constant_folding=True)
    proto = onnx.load_from_string(buffer.getvalue())
    if post_process is not None:
        post_process(proto, opset)
    onnx.checker.check_model(proto, full_check=True)  # full_check also runs strict shape inference
    graph_inputs = [i.name for i in proto.graph.input]
    graph_outputs = [o.name for o in proto.graph.output]
    assert graph_inputs == input_names, (name, graph_inputs)
    assert graph_outputs == output_names, (name, graph_outputs)
    model_path = os.path.join(folder, "model.onnx")
    onnx.save(proto, model_path)
    assert os.path.getsize(model_path) < MAX_MODEL_BYTES, (name, os.path.getsize(model_path))

    for set_index, inputs in enumerate(input_sets):
        data_dir = os.path.join(folder, "test_data_set_%d" % set_index)
        os.makedirs(data_dir)
        outputs = to_numpy_outputs(model(*inputs))
        assert len(outputs) == len(output_names)
        for i, tensor in enumerate(inputs):
            write_tensor(os.path.join(data_dir, "input_%d.pb" % i), tensor.numpy(), input_names[i])
        for i, array in enumerate(outputs):
            assert np.all(np.isfinite(array)), (name, output_names[i])
            write_tensor(os.path.join(data_dir, "output_%d.pb" % i), array, output_names[i])
        # Read back: the files hold exactly what PyTorch computed, under the graph's value names.
        for i, array in enumerate(outputs):
            saved = onnx.TensorProto()
            with open(os.path.join(data_dir, "output_%d.pb" % i), "rb") as f:
                saved.ParseFromString(f.read())
            assert saved.name == output_names[i]
            back = onnx.numpy_helper.to_array(saved)
            assert back.dtype == array.dtype and back.shape == array.shape and np.array_equal(back, array)
    ops = sorted({n.op_type for n in proto.graph.node})
    print("%-28s opset %2d  %7d bytes  %d set(s)  ops: %s"
          % (name, opset, os.path.getsize(model_path), len(input_sets), " ".join(ops)))


def build_vision(opset):
    torch.manual_seed(1000 + opset)
    gen = torch.Generator().manual_seed(2000 + opset)
    if opset == 9:
        # Opset-9 Upsample has no half-pixel mode, so PyTorch's bilinear (align_corners=False) would not
        # match it: the opset-9 net upsamples with nearest only.
        model = OcrNet(attention="hand", resize_modes=("nearest",))
    elif opset == 11:
        model = OcrNet(attention="hand", resize_modes=("nearest", "bilinear"))
    else:
        model = OcrNet(attention="torch", resize_modes=("nearest", "bilinear"))
    randomize_batchnorm_stats(model, gen)
    images = [torch.randn(2, 3, 32, 64, generator=gen)]
    dynamic_axes = None
    if opset == 11:  # dynamic batch: the sequence reshape then runs on Shape/Gather values
        images.append(torch.randn(1, 3, 32, 64, generator=gen))
        dynamic_axes = {"image": {0: "batch"}, "log_probs": {0: "batch"}}
    # PRESERVE keeps BatchNormalization as its own node (EVAL would fold it into the convolution);
    # the model itself is in eval mode, so BatchNorm uses running statistics either way.
    post = insert_dropout_after_input if opset in (9, 13) else None
    export_case("ocr_crnn_opset%d" % opset, model, [[x] for x in images], ["image"], ["log_probs"], opset,
                dynamic_axes=dynamic_axes, training=torch.onnx.TrainingMode.PRESERVE, post_process=post)


def build_gpt2(opset):
    torch.manual_seed(3000 + opset)
    gen = torch.Generator().manual_seed(4000 + opset)
    model = Gpt2(gelu_approximate="tanh" if opset == 14 else "none")
    ids = [torch.randint(0, 256, (1, 16), generator=gen), torch.randint(0, 256, (1, 7), generator=gen)]
    export_case("gpt2_opset%d" % opset, model, [[x] for x in ids], ["input_ids"], ["logits"], opset,
                dynamic_axes={"input_ids": {1: "seq"}, "logits": {1: "seq"}})


def build_llama(opset):
    torch.manual_seed(5000 + opset)
    gen = torch.Generator().manual_seed(6000 + opset)
    model = Llama(kv_repeat="expand", rotary_outer="broadcast" if opset == 14 else "einsum")
    ids = [torch.randint(0, 256, (1, 16), generator=gen), torch.randint(0, 256, (1, 5), generator=gen)]
    export_case("llama_opset%d" % opset, model, [[x] for x in ids], ["input_ids"], ["logits"], opset,
                dynamic_axes={"input_ids": {1: "seq"}, "logits": {1: "seq"}})


def build_llama_block(opset):
    # A single block on float hidden states, with grouped-query heads repeated by repeat_interleave.
    # Static shapes on purpose: torch 1.13 exports repeat_interleave(dim=1) of a tensor with unknown later
    # dims as Reshape(.., [1, -1, 0, 16]) after an Unsqueeze, where the 0 copies the wrong axis, so a
    # dynamic-seq export would not compute what PyTorch computed.
    torch.manual_seed(5500 + opset)
    gen = torch.Generator().manual_seed(6500 + opset)
    model = LlamaBlockOnly(kv_repeat="repeat_interleave", rotary_outer="einsum")
    hidden = torch.randn(1, 16, 64, generator=gen)
    export_case("llama_block_opset%d" % opset, model, [[hidden]], ["hidden_states"], ["output"], opset)


def build_encoder(opset):
    torch.manual_seed(7000 + opset)
    gen = torch.Generator().manual_seed(8000 + opset)
    model = PaddedEncoder()
    sets = []
    for length, valid_lengths in ((10, (10, 6)), (7, (3, 7))):
        x = torch.randn(2, length, 32, generator=gen)
        mask = torch.arange(length)[None, :] >= torch.tensor(valid_lengths)[:, None]  # True = padding
        sets.append([x, mask])
    export_case("encoder_padmask_opset%d" % opset, model, sets, ["x", "key_padding_mask"], ["hidden", "pooled"],
                opset, dynamic_axes={"x": {1: "seq"}, "key_padding_mask": {1: "seq"}, "hidden": {1: "seq"}})


def main():
    os.makedirs(MODELS_DIR, exist_ok=True)
    for opset in (9, 11, 13):
        build_vision(opset)
    for opset in (14, 17):
        build_gpt2(opset)
        build_llama(opset)
    build_llama_block(17)
    build_encoder(14)
    total = 0
    for root, _, files in os.walk(MODELS_DIR):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print("total %d bytes under %s" % (total, MODELS_DIR))
    assert total < MAX_TOTAL_BYTES
    return 0


if __name__ == "__main__":
    sys.exit(main())
