#!/usr/bin/python3
"""Writes the one-node RNN / LSTM / GRU cases test_ref_recurrent.cpp replays (tests/data/recurrent/*.txt).

Run from anywhere: /usr/bin/python3 tests/reference/gen_recurrent_cases.py   (torch 1.13 + numpy; a second)

Expected outputs come from torch.nn.LSTM / GRU / RNN where PyTorch has the configuration (forward,
reverse = the second half of a bidirectional module, bidirectional, batch-first = layout 1, initial
states, biases; PyTorch's GRU is ONNX's linear_before_reset = 1), with the weights reordered from
PyTorch's gate order (LSTM i f g o, GRU r z n) to ONNX's (LSTM i o f c, GRU z r h). Everything else
(peepholes, sequence_lens, clip, input_forget, linear_before_reset = 0, activation lists with
alpha/beta) comes from the small numpy implementation of the ONNX specification below, which the
script first checks against PyTorch on the configurations both support.

File format: the one of tests/reference/gen_nn_cases.py (op / attr / in / const / out / tol records),
with one addition: `attr activations s A,B,C` is a comma-separated string list.
"""
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "recurrent")
RNG = np.random.default_rng(20240612)
torch.set_num_threads(1)

DTYPES = {np.float32: "f32", np.int32: "i32", np.int64: "i64"}


def rnd(*shape, scale=1.0):
    return np.round(RNG.uniform(-scale, scale, size=shape), 2).astype(np.float32)


def fmt_values(a):
    a = np.asarray(a)
    if a.dtype.kind == "f":
        return " ".join(str(v) for v in a.astype(np.float32).ravel())
    return " ".join(str(int(v)) for v in a.ravel())


def tensor_line(kind, a):
    a = np.asarray(a)
    dims = " ".join(str(d) for d in a.shape)
    return "%s %s %d %s\n%s\n" % (kind, DTYPES[a.dtype.type], a.ndim, dims, fmt_values(a))


def write_case(name, op, inputs, outputs, attrs, comment, tol=None):
    lines = ["# " + comment + "\n", "op %s\n" % op]
    for key, val in attrs.items():
        if key == "activations":
            lines.append("attr activations s %s\n" % ",".join(val))
        elif isinstance(val, str):
            lines.append("attr %s s %s\n" % (key, val))
        elif isinstance(val, float):
            lines.append("attr %s f %.9g\n" % (key, val))
        elif isinstance(val, int):
            lines.append("attr %s i %d\n" % (key, val))
        else:
            lines.append("attr %s fs %s\n" % (key, " ".join("%.9g" % v for v in val)))
    for x in inputs:
        lines.append("in none\n" if x is None else tensor_line("in", x))
    for y in outputs:
        lines.append(tensor_line("out", y))
    if tol:
        lines.append("tol %g %g\n" % tol)
    with open(os.path.join(OUT, name + ".txt"), "w") as f:
        f.writelines(lines)


# --------------------------------------------------------------------------------------------------
# numpy implementation of the ONNX specification (layout 0 shapes; the caller transposes layout 1)

def activation(name, alpha, beta):
    n = name.lower()
    return {
        "relu": lambda x: np.maximum(x, 0),
        "tanh": np.tanh,
        "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
        "affine": lambda x: alpha * x + beta,
        "leakyrelu": lambda x: np.where(x >= 0, x, alpha * x),
        "thresholdedrelu": lambda x: np.where(x > alpha, x, 0),
        "scaledtanh": lambda x: alpha * np.tanh(beta * x),
        "hardsigmoid": lambda x: np.clip(alpha * x + beta, 0, 1),
        "elu": lambda x: np.where(x >= 0, x, alpha * (np.exp(x) - 1)),
        "softsign": lambda x: x / (1 + np.abs(x)),
        "softplus": lambda x: np.log1p(np.exp(x)),
    }[n]


ALPHA_DEFAULT = {"affine": 1.0, "leakyrelu": 0.01, "thresholdedrelu": 1.0, "scaledtanh": 1.0,
                 "hardsigmoid": 0.2, "elu": 1.0}
BETA_DEFAULT = {"affine": 0.0, "scaledtanh": 1.0, "hardsigmoid": 0.5}


def make_activations(names, alphas, betas):
    """activation_alpha / activation_beta are consumed in order by the functions that take them."""
    alphas, betas, out = list(alphas), list(betas), []
    for n in names:
        l = n.lower()
        a = alphas.pop(0) if l in ALPHA_DEFAULT and alphas else ALPHA_DEFAULT.get(l, 0.0)
        b = betas.pop(0) if l in BETA_DEFAULT and betas else BETA_DEFAULT.get(l, 0.0)
        out.append(activation(n, a, b))
    return out


def onnx_recurrent(op, X, W, R, B=None, lens=None, h0=None, c0=None, P=None, direction="forward",
                   activations=None, alphas=(), betas=(), clip=None, input_forget=0, linear_before_reset=0):
    """X [seq, batch, in]; returns Y [seq, dirs, batch, H], Y_h, Y_c [dirs, batch, H] (float64)."""
    X, W, R = (np.asarray(a, np.float64) for a in (X, W, R))
    seq, batch, _ = X.shape
    dirs = 2 if direction == "bidirectional" else 1
    G = {"RNN": 1, "GRU": 3, "LSTM": 4}[op]
    H = R.shape[-1]
    per_dir = {"RNN": 1, "GRU": 2, "LSTM": 3}[op]
    if activations is None:
        activations = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}[op] * dirs
    acts = make_activations(activations, alphas, betas)
    B = np.zeros((dirs, 2 * G * H)) if B is None else np.asarray(B, np.float64)
    lens = np.full(batch, seq) if lens is None else np.asarray(lens)
    h0 = np.zeros((dirs, batch, H)) if h0 is None else np.asarray(h0, np.float64)
    c0 = np.zeros((dirs, batch, H)) if c0 is None else np.asarray(c0, np.float64)
    P = np.zeros((dirs, 3 * H)) if P is None else np.asarray(P, np.float64)
    cl = (lambda v: np.clip(v, -clip, clip)) if clip is not None else (lambda v: v)
    Y = np.zeros((seq, dirs, batch, H))
    Y_h = np.zeros((dirs, batch, H))
    Y_c = np.zeros((dirs, batch, H))
    for d in range(dirs):
        f, g, h = (acts[d * per_dir:(d + 1) * per_dir] + [None, None])[:3]
        reverse = direction == "reverse" or d == 1
        Wb, Rb = B[d, :G * H], B[d, G * H:]
        for b in range(batch):
            L = int(lens[b])
            Ht, Ct = h0[d, b].copy(), c0[d, b].copy()
            steps = range(L - 1, -1, -1) if reverse else range(L)
            for t in steps:
                x = X[t, b]
                gx = W[d] @ x + Wb
                gh = R[d] @ Ht + Rb
                if op == "RNN":
                    Ht = f(cl(gx + gh))
                elif op == "GRU":
                    z = f(cl(gx[:H] + gh[:H]))
                    r = f(cl(gx[H:2 * H] + gh[H:2 * H]))
                    if linear_before_reset:
                        pre = gx[2 * H:] + r * gh[2 * H:]
                    else:
                        pre = gx[2 * H:] + R[d][2 * H:] @ (r * Ht) + Rb[2 * H:]
                    Ht = (1 - z) * g(cl(pre)) + z * Ht
                else:
                    pi, po, pf = P[d, :H], P[d, H:2 * H], P[d, 2 * H:]
                    i = f(cl(gx[:H] + gh[:H] + pi * Ct))
                    fg = 1 - i if input_forget else f(cl(gx[2 * H:3 * H] + gh[2 * H:3 * H] + pf * Ct))
                    c = g(cl(gx[3 * H:] + gh[3 * H:]))
                    Ct = fg * Ct + i * c
                    o = f(cl(gx[H:2 * H] + gh[H:2 * H] + po * Ct))
                    Ht = o * h(cl(Ct))
                Y[t, d, b] = Ht
            if L > 0:
                Y_h[d, b], Y_c[d, b] = Ht, Ct
    return Y, Y_h, Y_c


# --------------------------------------------------------------------------------------------------
# PyTorch modules -> ONNX weights

# Row blocks of PyTorch's weight matrices in ONNX gate order.
TORCH_TO_ONNX_GATES = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}


def onnx_weights(module, op, dirs):
    H = module.hidden_size
    order = TORCH_TO_ONNX_GATES[op]
    W, R, B = [], [], []
    for d in range(dirs):
        sfx = "_reverse" if d == 1 else ""
        w = getattr(module, "weight_ih_l0" + sfx).detach().numpy()
        r = getattr(module, "weight_hh_l0" + sfx).detach().numpy()
        bi = getattr(module, "bias_ih_l0" + sfx).detach().numpy()
        bh = getattr(module, "bias_hh_l0" + sfx).detach().numpy()
        blocks = lambda a: np.concatenate([a[k * H:(k + 1) * H] for k in order])
        W.append(blocks(w))
        R.append(blocks(r))
        B.append(np.concatenate([blocks(bi), blocks(bh)]))
    return np.stack(W), np.stack(R), np.stack(B)


def torch_module(op, input_size, hidden, bidirectional, nonlinearity="tanh"):
    torch.manual_seed(7)
    cls = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "RNN": torch.nn.RNN}[op]
    kwargs = {"nonlinearity": nonlinearity} if op == "RNN" else {}
    m = cls(input_size, hidden, bidirectional=bidirectional, **kwargs)
    with torch.no_grad():  # two-decimal weights keep the case files short
        for p in m.parameters():
            p.copy_(torch.from_numpy(np.round(p.numpy(), 2)))
    return m


def torch_run(m, op, X, h0, c0):
    with torch.no_grad():
        x = torch.from_numpy(X)
        if op == "LSTM":
            y, (hn, cn) = m(x, (torch.from_numpy(h0), torch.from_numpy(c0)))
        else:
            y, hn = m(x, torch.from_numpy(h0))
            cn = torch.zeros_like(hn)
    seq, batch = X.shape[:2]
    dirs = hn.shape[0]
    H = hn.shape[2]
    Y = y.numpy().reshape(seq, batch, dirs, H).transpose(0, 2, 1, 3)  # [seq, dirs, batch, H]
    return Y, hn.numpy(), cn.numpy()


def to_layout1(X, Y, states):
    return X.transpose(1, 0, 2), Y.transpose(2, 0, 1, 3), [s.transpose(1, 0, 2) for s in states]


def torch_case(name, op, direction, layout=0, seq=5, batch=3, input_size=4, hidden=3, nonlinearity="tanh"):
    dirs = 2 if direction == "bidirectional" else 1
    m = torch_module(op, input_size, hidden, direction == "bidirectional", nonlinearity)
    X = rnd(seq, batch, input_size)
    W, R, B = onnx_weights(m, op, 2 if direction == "bidirectional" else 1)
    torch_dirs = 2 if direction == "bidirectional" else 1
    h0 = rnd(torch_dirs, batch, hidden)
    c0 = rnd(torch_dirs, batch, hidden)
    Y, Y_h, Y_c = torch_run(m, op, X, h0, c0)
    if direction == "reverse":  # reverse = the backward half of a bidirectional module
        m = torch_module(op, input_size, hidden, True, nonlinearity)
        W, R, B = (a[1:] for a in onnx_weights(m, op, 2))
        h0_full = np.concatenate([np.zeros_like(h0), h0])
        c0_full = np.concatenate([np.zeros_like(c0), c0])
        Y, Y_h, Y_c = torch_run(m, op, X, h0_full, c0_full)
        Y, Y_h, Y_c = Y[:, 1:], Y_h[1:], Y_c[1:]
    # The numpy implementation must agree with PyTorch wherever both apply.
    acts = None
    if op == "RNN" and nonlinearity == "relu":
        acts = ["Relu"] * dirs
    ref = onnx_recurrent(op, X, W, R, B, h0=h0, c0=c0, direction=direction, activations=acts,
                         linear_before_reset=1 if op == "GRU" else 0)
    for got, want in list(zip(ref, (Y, Y_h, Y_c)))[:3 if op == "LSTM" else 2]:
        assert np.allclose(got, want, atol=1e-5), (name, np.abs(got - want).max())
    attrs = {"hidden_size": hidden, "direction": direction}
    if op == "GRU":
        attrs["linear_before_reset"] = 1
    if acts:
        attrs["activations"] = acts
    if layout == 1:
        attrs["layout"] = 1
    states = [Y_h, Y_c] if op == "LSTM" else [Y_h]
    inits = [h0, c0] if op == "LSTM" else [h0]
    if layout == 1:
        X, Y, states = to_layout1(X, Y, states)
        inits = [s.transpose(1, 0, 2) for s in inits]
    inputs = [X, W, R, B, None] + inits
    write_case(name, op, inputs, [Y] + states, attrs,
               "torch.nn.%s (%s%s), weights reordered to ONNX gate order" %
               (op, direction, ", batch_first" if layout == 1 else ""))


def spec_case(name, op, comment, seq=4, batch=3, input_size=3, hidden=2, direction="forward", layout=0,
              lens=None, with_p=False, with_bias=True, with_init=True, **kw):
    dirs = 2 if direction == "bidirectional" else 1
    G = {"RNN": 1, "GRU": 3, "LSTM": 4}[op]
    X = rnd(seq, batch, input_size, scale=2.0)
    W = rnd(dirs, G * hidden, input_size)
    R = rnd(dirs, G * hidden, hidden)
    B = rnd(dirs, 2 * G * hidden) if with_bias else None
    h0 = rnd(dirs, batch, hidden) if with_init else None
    c0 = rnd(dirs, batch, hidden) if with_init and op == "LSTM" else None
    P = rnd(dirs, 3 * hidden) if with_p else None
    L = None if lens is None else np.array(lens, np.int32)
    Y, Y_h, Y_c = onnx_recurrent(op, X, W, R, B, L, h0, c0, P, direction, **kw)
    attrs = {"hidden_size": hidden, "direction": direction}
    for key, onnx_key in (("activations", "activations"), ("alphas", "activation_alpha"),
                          ("betas", "activation_beta"), ("clip", "clip"), ("input_forget", "input_forget"),
                          ("linear_before_reset", "linear_before_reset")):
        if key in kw:
            attrs[onnx_key] = kw[key]
    states = [Y_h, Y_c] if op == "LSTM" else [Y_h]
    inits = [h0, c0] if op == "LSTM" else [h0]
    if layout == 1:
        attrs["layout"] = 1
        X, Y, states = to_layout1(X, Y, states)
        inits = [None if s is None else s.transpose(1, 0, 2) for s in inits]
    inputs = [X, W, R, B, L] + inits + ([P] if op == "LSTM" and with_p else [])
    while inputs and inputs[-1] is None:
        inputs.pop()
    write_case(name, op, inputs, [Y.astype(np.float32)] + [s.astype(np.float32) for s in states], attrs,
               "numpy implementation of the ONNX spec: " + comment)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".txt"):
            os.remove(os.path.join(OUT, f))
    # PyTorch references.
    torch_case("lstm_torch_forward", "LSTM", "forward", seq=6, batch=2, input_size=5, hidden=4)
    torch_case("lstm_torch_reverse", "LSTM", "reverse")
    torch_case("lstm_torch_bidirectional_layout1", "LSTM", "bidirectional", layout=1)
    torch_case("gru_torch_forward", "GRU", "forward", seq=6, batch=2, input_size=5, hidden=4)
    torch_case("gru_torch_bidirectional", "GRU", "bidirectional")
    torch_case("gru_torch_reverse_layout1", "GRU", "reverse", layout=1)
    torch_case("rnn_torch_tanh_forward", "RNN", "forward")
    torch_case("rnn_torch_relu_bidirectional", "RNN", "bidirectional", nonlinearity="relu")
    # The ONNX features PyTorch lacks, from the numpy implementation.
    spec_case("lstm_spec_peepholes_seqlens_bidirectional", "LSTM", "peepholes P, sequence_lens [4, 2, 1]",
              direction="bidirectional", lens=[4, 2, 1], with_p=True)
    spec_case("lstm_spec_input_forget_clip_layout1", "LSTM", "input_forget = 1, clip = 0.7, layout 1",
              layout=1, input_forget=1, clip=0.7, with_p=True)
    spec_case("lstm_spec_activations_alpha_beta", "LSTM",
              "activations HardSigmoid, ScaledTanh, Affine with activation_alpha/beta",
              activations=["HardSigmoid", "ScaledTanh", "Affine"], alphas=[0.3, 0.8, 1.5],
              betas=[0.4, 1.2, 0.1])
    spec_case("lstm_spec_no_bias_no_init_reverse", "LSTM", "no B, no initial states, reverse",
              direction="reverse", with_bias=False, with_init=False, lens=[4, 3, 4])
    spec_case("gru_spec_default_reset_seqlens_reverse", "GRU", "linear_before_reset = 0, sequence_lens, reverse",
              direction="reverse", lens=[3, 4, 1], linear_before_reset=0)
    spec_case("gru_spec_activations_bidirectional", "GRU",
              "activations LeakyRelu, Softsign / Sigmoid, Elu (per direction), clip 1.5",
              direction="bidirectional", activations=["LeakyRelu", "Softsign", "Sigmoid", "Elu"],
              alphas=[0.2, 0.5], clip=1.5)
    spec_case("rnn_spec_seqlens_clip_layout1", "RNN", "sequence_lens, clip 0.9, layout 1",
              layout=1, lens=[2, 4, 3], clip=0.9)
    spec_case("rnn_spec_thresholded_softplus", "RNN", "activations ThresholdedRelu / Softplus, bidirectional",
              direction="bidirectional", activations=["ThresholdedRelu", "Softplus"], alphas=[0.25])


if __name__ == "__main__":
    main()
