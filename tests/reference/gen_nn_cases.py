#!/usr/bin/python3
"""Writes the one-node nn cases the reference-kernel tests replay (tests/data/nn/*.txt).

Run from anywhere: /usr/bin/python3 tests/reference/gen_nn_cases.py   (torch 1.13 + numpy; a few seconds)

Expected outputs come from PyTorch where it has the op with ONNX's semantics (conv, conv-transpose,
max/avg pool with ceil_mode, batch/instance/layer/group norm, odd-size LRN, interpolate) and otherwise
from the small numpy implementations of the ONNX specification below (deformable conv with its
bilinear sampler, pools with asymmetric/SAME padding, Lp pool, RMS norm, MVN, the Resize coordinate
modes PyTorch lacks, einsum via np.einsum, the linear recurrence). Inputs are rounded to two decimals
so their text form is short; every value is written as the shortest text that reads back as
the same float32.

File format (whitespace separated, one record per line, '#' starts a comment line):
  op <OpType>
  attr <name> i <int> | f <float> | s <string> | is <ints...> | fs <floats...>
  in|const <dtype> <rank> <dims...>     then one line of values (const = graph constant)
  in none                                absent optional input
  out <dtype> <rank> <dims...>           then one line of expected values
  tol <rtol> <atol>                      optional, default 1e-4 1e-5
"""
import itertools
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "nn")
RNG = np.random.default_rng(20240611)
torch.set_num_threads(1)

DTYPES = {np.float32: "f32", np.int64: "i64", np.uint8: "u8", np.int32: "i32"}


def rnd(*shape, lo=-2.0, hi=2.0):
    return np.round(RNG.uniform(lo, hi, size=shape), 2).astype(np.float32)


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def fmt_values(a):
    a = np.asarray(a)
    if a.dtype.kind == "f":
        return " ".join(str(v) for v in a.astype(np.float32).ravel())  # shortest exact float32 text
    return " ".join(str(int(v)) for v in a.ravel())


def tensor_line(kind, a):
    a = np.asarray(a)
    name = DTYPES[a.dtype.type]
    dims = " ".join(str(d) for d in a.shape)
    return "%s %s %d %s\n%s\n" % (kind, name, a.ndim, dims, fmt_values(a))


def write_case(name, op, inputs, outputs, attrs=None, comment="", tol=None):
    """inputs: list of ndarray | None | ('const', ndarray). outputs: list of ndarray."""
    lines = ["# " + comment + "\n"] if comment else []
    lines.append("op %s\n" % op)
    for key, val in (attrs or {}).items():
        if isinstance(val, str):
            lines.append("attr %s s %s\n" % (key, val))
        elif isinstance(val, float):
            lines.append("attr %s f %.9g\n" % (key, val))
        elif isinstance(val, int):
            lines.append("attr %s i %d\n" % (key, val))
        elif all(isinstance(v, int) for v in val):
            lines.append("attr %s is %s\n" % (key, " ".join(str(v) for v in val)))
        else:
            lines.append("attr %s fs %s\n" % (key, " ".join("%.9g" % v for v in val)))
    for x in inputs:
        if x is None:
            lines.append("in none\n")
        elif isinstance(x, tuple):
            lines.append(tensor_line("const", x[1]))
        else:
            lines.append(tensor_line("in", x))
    for y in outputs:
        y = np.asarray(y)
        if y.dtype == np.float64:
            y = y.astype(np.float32)
        lines.append(tensor_line("out", y))
    if tol:
        lines.append("tol %g %g\n" % tol)
    with open(os.path.join(OUT, name + ".txt"), "w") as f:
        f.writelines(lines)


# ------------------------------------------------------------------------------------------------
# Window geometry from the ONNX spec (used by the numpy references below).


def onnx_pads(in_sizes, kernel, strides, dilations, pads, auto_pad, ceil_mode=0):
    n = len(in_sizes)
    out, pb, pe = [], [], []
    for i in range(n):
        ext = (kernel[i] - 1) * dilations[i] + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-in_sizes[i] // strides[i])
            total = max(0, (o - 1) * strides[i] + ext - in_sizes[i])
            b = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            out.append(o), pb.append(b), pe.append(total - b)
            continue
        b, e = (0, 0) if auto_pad == "VALID" else (pads[i], pads[i + n])
        room = in_sizes[i] + b + e - ext
        o = (-(-room // strides[i]) if ceil_mode else room // strides[i]) + 1
        if ceil_mode and (o - 1) * strides[i] >= in_sizes[i] + b:
            o -= 1
        out.append(o), pb.append(b), pe.append(e)
    return out, pb, pe


def pool_ref(x, kind, kernel, strides=None, pads=None, dilations=None, auto_pad="NOTSET", ceil_mode=0,
             count_include_pad=0, p=2, storage_order=0):
    n = len(kernel)
    strides = strides or [1] * n
    dilations = dilations or [1] * n
    pads = pads or [0] * (2 * n)
    spatial = list(x.shape[2:])
    out, pb, pe = onnx_pads(spatial, kernel, strides, dilations, pads, auto_pad, ceil_mode)
    y = np.zeros(x.shape[:2] + tuple(out), dtype=np.float64)
    idx = np.zeros(y.shape, dtype=np.int64)
    for b, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for o in itertools.product(*[range(v) for v in out]):
            vals, where, count_pad = [], [], 0
            for k in itertools.product(*[range(v) for v in kernel]):
                pos = [o[i] * strides[i] - pb[i] + k[i] * dilations[i] for i in range(n)]
                if all(0 <= pos[i] < spatial[i] for i in range(n)):
                    vals.append(float(x[(b, c) + tuple(pos)]))
                    where.append(pos)
                if all(-pb[i] <= pos[i] < spatial[i] + pe[i] for i in range(n)):
                    count_pad += 1
            if kind == "max":
                j = int(np.argmax(vals))  # first maximum
                y[(b, c) + o] = vals[j]
                if storage_order == 0:
                    flat = np.ravel_multi_index(where[j], spatial)
                else:
                    flat = np.ravel_multi_index(where[j], spatial, order="F")
                idx[(b, c) + o] = (b * x.shape[1] + c) * int(np.prod(spatial)) + flat
            elif kind == "avg":
                y[(b, c) + o] = sum(vals) / (count_pad if count_include_pad else len(vals))
            else:
                y[(b, c) + o] = sum(abs(v) ** p for v in vals) ** (1.0 / p)
    return y.astype(x.dtype), idx


# ------------------------------------------------------------------------------------------------
# Convolutions


def conv_cases():
    def torch_conv(x, w, b, strides, pads, dilations, group):
        n = x.ndim - 2
        xt = t(x)
        # F.pad takes (last_begin, last_end, ..., first_begin, first_end)
        pad_arg = []
        for i in reversed(range(n)):
            pad_arg += [pads[i], pads[i + n]]
        xt = F.pad(xt, pad_arg)
        fn = [F.conv1d, F.conv2d, F.conv3d][n - 1]
        return fn(xt, t(w), None if b is None else t(b), stride=strides, dilation=dilations, groups=group).numpy()

    x, w, b = rnd(2, 4, 9), rnd(6, 2, 3), rnd(6)
    y = torch_conv(x, w, b, [2], [1, 2], [1], 2)
    write_case("conv_1d_group_asym_pads", "Conv", [x, w, b], [y],
               dict(group=2, strides=[2], pads=[1, 2]), "torch conv1d on F.pad input")

    x, w, b = rnd(1, 3, 7, 6), rnd(4, 3, 3, 3), rnd(4)
    y = torch_conv(x, w, b, [2, 1], [1, 0, 2, 1], [1, 2], 1)
    write_case("conv_2d_strides_dilations_pads", "Conv", [x, w, b], [y],
               dict(strides=[2, 1], pads=[1, 0, 2, 1], dilations=[1, 2], kernel_shape=[3, 3]),
               "torch conv2d, asymmetric pads, dilation")

    x, w, b = rnd(1, 4, 5, 5), rnd(4, 1, 3, 3), rnd(4)
    out, pb, pe = onnx_pads([5, 5], [3, 3], [2, 2], [1, 1], None, "SAME_UPPER")
    y = torch_conv(x, w, b, [2, 2], pb + pe, [1, 1], 4)
    write_case("conv_2d_depthwise_same_upper", "Conv", [x, w, b], [y],
               dict(group=4, strides=[2, 2], auto_pad="SAME_UPPER"), "depthwise, SAME_UPPER")

    x, w = rnd(1, 2, 6, 5), rnd(3, 2, 2, 3)
    out, pb, pe = onnx_pads([6, 5], [2, 3], [1, 2], [1, 1], None, "SAME_LOWER")
    y = torch_conv(x, w, None, [1, 2], pb + pe, [1, 1], 1)
    write_case("conv_2d_same_lower_no_bias", "Conv", [x, w], [y],
               dict(strides=[1, 2], auto_pad="SAME_LOWER"), "SAME_LOWER, even kernel dim")

    x, w, b = rnd(2, 2, 9, 8), rnd(2, 2, 3, 2), rnd(2)
    y = torch_conv(x, w, b, [2, 2], [0, 0, 0, 0], [2, 2], 1)
    write_case("conv_2d_valid", "Conv", [x, w, b], [y],
               dict(strides=[2, 2], dilations=[2, 2], auto_pad="VALID", pads=[5, 5, 5, 5]),
               "VALID ignores pads")

    x, w, b = rnd(1, 2, 4, 5, 4), rnd(4, 1, 2, 3, 2), rnd(4)
    y = torch_conv(x, w, b, [1, 2, 1], [1, 0, 1, 0, 1, 1], [1, 1, 1], 2)
    write_case("conv_3d_group", "Conv", [x, w, b], [y],
               dict(group=2, strides=[1, 2, 1], pads=[1, 0, 1, 0, 1, 1]), "3-D, groups")


def conv_transpose_cases():
    def torch_convt(x, w, b, strides, pad_begin, out_sizes, output_padding, dilations, group):
        n = x.ndim - 2
        fn = [F.conv_transpose1d, F.conv_transpose2d][n - 1]
        full = fn(t(x), t(w), None, stride=strides, padding=0, output_padding=0, groups=group,
                  dilation=dilations).numpy()
        # full covers positions [0, s*(in-1) + ext); ONNX's output o is full position o + pad_begin,
        # zero where that lies beyond the full result (output_padding / output_shape growth).
        y = np.zeros(full.shape[:2] + tuple(out_sizes), dtype=np.float32)
        for o in itertools.product(*[range(v) for v in out_sizes]):
            src = tuple(o[i] + pad_begin[i] for i in range(n))
            if all(0 <= src[i] < full.shape[2 + i] for i in range(n)):
                y[(slice(None), slice(None)) + o] = full[(slice(None), slice(None)) + src]
        if b is not None:
            y += b.reshape((1, -1) + (1,) * n)
        return y

    x, w, b = rnd(1, 4, 5), rnd(4, 3, 3), rnd(6)
    # out = s*(in-1) + op + ext - pads = 2*4 + 1 + 5 - 1 = 13
    y = torch_convt(x, w, b, [2], [1], [13], [1], [2], 2)
    write_case("convt_1d_group_dilation", "ConvTranspose", [x, w, b], [y],
               dict(group=2, strides=[2], pads=[1, 0], output_padding=[1], dilations=[2]))

    x, w, b = rnd(2, 2, 4, 3), rnd(2, 3, 3, 2), rnd(3)
    outs = [2 * 3 + 1 + 3 - 1, 3 * 2 + 0 + 2 - 1]
    y = torch_convt(x, w, b, [2, 3], [1, 0], outs, [1, 0], [1, 1], 1)
    write_case("convt_2d_strides_pads", "ConvTranspose", [x, w, b], [y],
               dict(strides=[2, 3], pads=[1, 0, 0, 1], output_padding=[1, 0]))

    x, w = rnd(1, 2, 3, 4), rnd(2, 2, 3, 3)
    # output_shape [9, 8] with strides 2: full = [7, 9]; total pads = max(0, full - out) = [0, 1]
    # NOTSET puts the larger half at the beginning: pad_begin = [0, 1].
    y = torch_convt(x, w, None, [2, 2], [0, 1], [9, 8], [0, 0], [1, 1], 1)
    write_case("convt_2d_output_shape", "ConvTranspose", [x, w], [y], dict(strides=[2, 2], output_shape=[9, 8]))

    x, w, b = rnd(1, 4, 3, 3), rnd(4, 1, 2, 3), rnd(2)
    # SAME_LOWER, strides 2: out = in*2 = 6; full = [2*2+2, 2*2+3] = [6, 7]; total = [0, 1] -> begin [0, 1]
    y = torch_convt(x, w, b, [2, 2], [0, 1], [6, 6], [0, 0], [1, 1], 2)
    write_case("convt_2d_same_lower_group", "ConvTranspose", [x, w, b], [y],
               dict(strides=[2, 2], auto_pad="SAME_LOWER", group=2))
    y = torch_convt(x, w, b, [2, 2], [0, 0], [6, 6], [0, 0], [1, 1], 2)
    write_case("convt_2d_same_upper_group", "ConvTranspose", [x, w, b], [y],
               dict(strides=[2, 2], auto_pad="SAME_UPPER", group=2))


def bilinear_zero_outside(plane, py, px):
    h, w = plane.shape
    if not (-1 < py < h and -1 < px < w):
        return 0.0
    y0, x0 = math.floor(py), math.floor(px)
    v = 0.0
    for yy in (y0, y0 + 1):
        for xx in (x0, x0 + 1):
            if 0 <= yy < h and 0 <= xx < w:
                v += (1 - abs(py - yy)) * (1 - abs(px - xx)) * float(plane[yy, xx])
    return v


def deform_conv_ref(x, w, offset, b, mask, strides, pads, dilations, group, offset_group):
    n_, c, h, wd = x.shape
    oc, cg, kh, kw = w.shape
    oh = (h + pads[0] + pads[2] - ((kh - 1) * dilations[0] + 1)) // strides[0] + 1
    ow = (wd + pads[1] + pads[3] - ((kw - 1) * dilations[1] + 1)) // strides[1] + 1
    off = offset.reshape(n_, offset_group, kh, kw, 2, oh, ow)
    msk = None if mask is None else mask.reshape(n_, offset_group, kh, kw, oh, ow)
    y = np.zeros((n_, oc, oh, ow), dtype=np.float64)
    for bi, m, r, s in itertools.product(range(n_), range(oc), range(oh), range(ow)):
        g = m // (oc // group)
        acc = 0.0 if b is None else float(b[m])
        for ci in range(cg):
            ch = g * cg + ci
            og = ch // (c // offset_group)
            for i, j in itertools.product(range(kh), range(kw)):
                py = r * strides[0] - pads[0] + i * dilations[0] + off[bi, og, i, j, 0, r, s]
                px = s * strides[1] - pads[1] + j * dilations[1] + off[bi, og, i, j, 1, r, s]
                v = bilinear_zero_outside(x[bi, ch], py, px)
                if msk is not None:
                    v *= msk[bi, og, i, j, r, s]
                acc += v * float(w[m, ci, i, j])
        y[bi, m, r, s] = acc
    return y


def deform_cases():
    x, w, b = rnd(1, 4, 6, 5), rnd(4, 2, 3, 3), rnd(4)
    oh, ow = (6 + 2 - 3) // 1 + 1, (5 + 2 - 3) // 2 + 1
    offset = rnd(1, 2 * 9 * 2, oh, ow, lo=-2.5, hi=2.5)
    y = deform_conv_ref(x, w, offset, b, None, [1, 2], [1, 1, 1, 1], [1, 1], 2, 2)
    write_case("deform_v1_groups", "DeformConv", [x, w, offset, b], [y],
               dict(group=2, offset_group=2, strides=[1, 2], pads=[1, 1, 1, 1]),
               "numpy bilinear sampler; offsets reach outside the image")

    x, w = rnd(2, 3, 5, 5), rnd(2, 3, 2, 2)
    oh = ow = (5 + 2 - 3) // 1 + 1
    offset = rnd(2, 1 * 4 * 2, oh, ow, lo=-1.5, hi=1.5)
    mask = rnd(2, 4, oh, ow, lo=0.0, hi=1.0)
    y = deform_conv_ref(x, w, offset, None, mask, [1, 1], [1, 1, 1, 1], [2, 2], 1, 1)
    write_case("deform_v2_mask_dilation", "DeformConv", [x, w, offset, None, mask], [y],
               dict(dilations=[2, 2], pads=[1, 1, 1, 1]), "v2: modulation mask, no bias")


# ------------------------------------------------------------------------------------------------
# Pools


def pool_cases():
    x = rnd(1, 2, 7, 6)
    yt, it = F.max_pool2d(t(x), kernel_size=(3, 2), stride=2, padding=1, dilation=(1, 2), ceil_mode=True,
                          return_indices=True)
    plane = 7 * 6
    idx = it.numpy() + (np.arange(2).reshape(1, 2, 1, 1)) * plane
    write_case("pool_max_2d_ceil_dilation_indices", "MaxPool", [x], [yt.numpy(), idx.astype(np.int64)],
               dict(kernel_shape=[3, 2], strides=[2, 2], pads=[1, 1, 1, 1], dilations=[1, 2], ceil_mode=1),
               "torch max_pool2d(return_indices) + plane offsets")

    x = rnd(2, 1, 5, 4)
    y, idx = pool_ref(x, "max", [2, 3], [1, 2], [0, 1, 1, 1], storage_order=1)
    write_case("pool_max_2d_storage_order", "MaxPool", [x], [y, idx],
               dict(kernel_shape=[2, 3], strides=[1, 2], pads=[0, 1, 1, 1], storage_order=1))

    xu = RNG.integers(0, 255, size=(1, 2, 6), dtype=np.uint8)
    y, _ = pool_ref(xu.astype(np.float32), "max", [3], [2], auto_pad="SAME_LOWER")
    write_case("pool_max_1d_u8_same_lower", "MaxPool", [xu], [y.astype(np.uint8)],
               dict(kernel_shape=[3], strides=[2], auto_pad="SAME_LOWER"))

    x = rnd(1, 1, 3, 4, 5)
    y = F.max_pool3d(t(x), kernel_size=2, stride=(1, 2, 2), padding=(1, 0, 1)).numpy()
    write_case("pool_max_3d", "MaxPool", [x], [y],
               dict(kernel_shape=[2, 2, 2], strides=[1, 2, 2], pads=[1, 0, 1, 1, 0, 1]))

    x = rnd(2, 2, 6, 7)
    y = F.avg_pool2d(t(x), kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=True).numpy()
    write_case("pool_avg_2d_ceil_include_pad", "AveragePool", [x], [y],
               dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1),
               "torch avg_pool2d: ceil-mode overhang is not counted")
    y = F.avg_pool2d(t(x), kernel_size=(2, 3), stride=(2, 2), padding=(1, 1), ceil_mode=False,
                     count_include_pad=False).numpy()
    write_case("pool_avg_2d_exclude_pad", "AveragePool", [x], [y],
               dict(kernel_shape=[2, 3], strides=[2, 2], pads=[1, 1, 1, 1]))

    x = rnd(1, 2, 5, 6)
    y, _ = pool_ref(x, "avg", [3, 2], [2, 1], auto_pad="SAME_UPPER")
    write_case("pool_avg_2d_same_upper", "AveragePool", [x], [y],
               dict(kernel_shape=[3, 2], strides=[2, 1], auto_pad="SAME_UPPER"))
    y, _ = pool_ref(x, "avg", [2, 2], [1, 1], [1, 0, 0, 1], [2, 2], count_include_pad=1)
    write_case("pool_avg_2d_dilation_include_pad", "AveragePool", [x], [y],
               dict(kernel_shape=[2, 2], pads=[1, 0, 0, 1], dilations=[2, 2], count_include_pad=1))

    x = rnd(1, 2, 9)
    y = F.avg_pool1d(t(x), kernel_size=4, stride=3, padding=2, ceil_mode=True, count_include_pad=False).numpy()
    write_case("pool_avg_1d_ceil", "AveragePool", [x], [y],
               dict(kernel_shape=[4], strides=[3], pads=[2, 2], ceil_mode=1))

    x = rnd(1, 2, 5, 5)
    y, _ = pool_ref(x, "lp", [2, 3], [2, 1], [1, 0, 0, 1], p=3)
    write_case("pool_lp_2d_p3", "LpPool", [x], [y], dict(kernel_shape=[2, 3], strides=[2, 1], pads=[1, 0, 0, 1], p=3))
    y = F.lp_pool2d(t(x), norm_type=2, kernel_size=2, stride=2, ceil_mode=False).numpy()
    write_case("pool_lp_2d_p2", "LpPool", [x], [y], dict(kernel_shape=[2, 2], strides=[2, 2]),
               "torch lp_pool2d (p = 2: x^2 = |x|^2)")

    x = rnd(2, 3, 4, 5)
    write_case("pool_global_avg", "GlobalAveragePool", [x], [x.mean(axis=(2, 3), keepdims=True)])
    x = rnd(1, 2, 3, 2, 2)
    write_case("pool_global_max_3d", "GlobalMaxPool", [x], [x.max(axis=(2, 3, 4), keepdims=True)])


# ------------------------------------------------------------------------------------------------
# Normalizations


def norm_cases():
    x, s, b, m = rnd(2, 3, 4, 2), rnd(3), rnd(3), rnd(3)
    v = rnd(3, lo=0.1, hi=2.0)
    y = F.batch_norm(t(x), t(m), t(v), t(s), t(b), training=False, eps=1e-3).numpy()
    write_case("norm_batch", "BatchNormalization", [x, s, b, m, v], [y], dict(epsilon=1e-3))

    x, s, b = rnd(2, 3, 5), rnd(3), rnd(3)
    y = F.instance_norm(t(x), weight=t(s), bias=t(b), eps=1e-5).numpy()
    write_case("norm_instance", "InstanceNormalization", [x, s, b], [y])

    x, s, b = rnd(2, 3, 4), rnd(3, 4), rnd(3, 4)
    y = F.layer_norm(t(x), (3, 4), t(s), t(b), eps=1e-5).numpy()
    mean = x.astype(np.float64).mean(axis=(1, 2), keepdims=True)
    inv = 1.0 / np.sqrt(x.astype(np.float64).var(axis=(1, 2), keepdims=True) + 1e-5)
    write_case("norm_layer_axis1_stats", "LayerNormalization", [x, s, b], [y, mean, inv], dict(axis=1))

    x, s = rnd(3, 2, 5), rnd(5)
    y = F.layer_norm(t(x), (5,), t(s), None, eps=1e-2).numpy()
    write_case("norm_layer_no_bias", "LayerNormalization", [x, s], [y], dict(epsilon=1e-2))

    x, s = rnd(2, 3, 4), rnd(3, 4)
    ms = (x.astype(np.float64) ** 2).mean(axis=(1, 2), keepdims=True)
    write_case("norm_rms_axis_m2", "RMSNormalization", [x, s], [x / np.sqrt(ms + 1e-5) * s], dict(axis=-2))
    x, s = rnd(4, 6), rnd(6)
    ms = (x.astype(np.float64) ** 2).mean(axis=-1, keepdims=True)
    write_case("norm_rms_default", "RMSNormalization", [x, s], [x / np.sqrt(ms + 1e-3) * s], dict(epsilon=1e-3))

    x, s, b = rnd(2, 6, 3, 3), rnd(6), rnd(6)
    y = F.group_norm(t(x), 2, t(s), t(b), eps=1e-5).numpy()
    write_case("norm_group", "GroupNormalization", [x, s, b], [y], dict(num_groups=2))
    x, s, b = rnd(1, 4, 5), rnd(4), rnd(4)
    y = F.group_norm(t(x), 4, t(s), t(b), eps=1e-4).numpy()
    write_case("norm_group_per_channel", "GroupNormalization", [x, s, b], [y], dict(num_groups=4, epsilon=1e-4))

    x = rnd(1, 5, 2, 3)
    y = F.local_response_norm(t(x), 3, alpha=0.02, beta=0.75, k=1.5).numpy()
    write_case("norm_lrn_size3", "LRN", [x], [y], dict(size=3, alpha=0.02, beta=0.75, bias=1.5),
               "torch local_response_norm (odd size: same window as ONNX)")
    # Even size: ONNX's window is [c - floor((size-1)/2), c + ceil((size-1)/2)].
    x = rnd(2, 6, 3)
    x64 = x.astype(np.float64)
    y = np.zeros_like(x64)
    for c in range(6):
        lo, hi = max(0, c - 1), min(5, c + 2)
        sq = (x64[:, lo:hi + 1] ** 2).sum(axis=1)
        y[:, c] = x64[:, c] / (1.0 + 1e-2 / 4 * sq) ** 0.5
    write_case("norm_lrn_size4", "LRN", [x], [y], dict(size=4, alpha=1e-2, beta=0.5))

    x = rnd(2, 3, 4, 4)
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(0, 2, 3), keepdims=True)
    std = np.sqrt(((x64 - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True))
    write_case("norm_mvn_default", "MeanVarianceNormalization", [x], [(x64 - mean) / (std + 1e-9)])
    x = rnd(3, 4, 2)
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=1, keepdims=True)
    std = np.sqrt(((x64 - mean) ** 2).mean(axis=1, keepdims=True))
    write_case("norm_mvn_axis1", "MeanVarianceNormalization", [x], [(x64 - mean) / (std + 1e-9)], dict(axes=[1]))


# ------------------------------------------------------------------------------------------------
# Resize: a numpy rendering of the ONNX specification (1-D interpolation applied axis by axis from
# the outermost, neighbours taken with edge replication), cross-checked against torch.interpolate.


def resize_coeffs(mode, ratio, a, nearest_mode):
    if mode == "nearest":
        if ratio == 0:
            return [1.0, 0.0]
        up = {"round_prefer_floor": ratio > 0.5, "round_prefer_ceil": ratio >= 0.5, "floor": False,
              "ceil": True}[nearest_mode]
        return [0.0, 1.0] if up else [1.0, 0.0]
    if mode == "linear":
        return [1 - ratio, ratio]
    r = ratio
    return [((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a, ((a + 2) * r - (a + 3)) * r * r + 1,
            ((a + 2) * (1 - r) - (a + 3)) * (1 - r) * (1 - r) + 1,
            ((a * (2 - r) - 5 * a) * (2 - r) + 8 * a) * (2 - r) - 4 * a]


def resize_1d(data, scale, out_len, x, p, roi):
    n = len(data)
    width = scale * n
    ctm = p["ctm"]
    if ctm == "half_pixel":
        xo = (x + 0.5) / scale - 0.5
    elif ctm == "half_pixel_symmetric":
        adj = out_len / width
        xo = (n / 2) * (1 - adj) + (x + 0.5) / scale - 0.5
    elif ctm == "pytorch_half_pixel":
        xo = (x + 0.5) / scale - 0.5 if out_len > 1 else 0.0
    elif ctm == "align_corners":
        xo = 0.0 if width == 1 else x * (n - 1) / (width - 1)
    elif ctm == "asymmetric":
        xo = x / scale
    elif ctm == "tf_half_pixel_for_nn":
        xo = (x + 0.5) / scale
    else:  # tf_crop_and_resize
        xo = (roi[1] - roi[0]) * (n - 1) / 2 if width == 1 else x * (roi[1] - roi[0]) * (n - 1) / (width - 1)
        xo += roi[0] * (n - 1)
        if xo < 0 or xo > n - 1:
            return p["extrapolation_value"]
    base = math.floor(xo)
    c = resize_coeffs(p["mode"], xo - base, p["a"], p["nearest_mode"])
    first = base if len(c) == 2 else base - 1
    idx = [first + k for k in range(len(c))]
    if p["exclude_outside"]:
        c = [ck if 0 <= i < n else 0.0 for ck, i in zip(c, idx)]
        total = sum(c)
        c = [ck / total for ck in c]
    return sum(ck * float(data[min(max(i, 0), n - 1)]) for ck, i in zip(c, idx))


def resize_nd(data, scales, out_shape, xs, p, rois):
    if data.ndim == 1:
        return resize_1d(data, scales[0], out_shape[0], xs[0], p, rois[0])
    inner = np.array([resize_nd(data[i], scales[1:], out_shape[1:], xs[1:], p, rois[1:])
                      for i in range(data.shape[0])])
    return resize_1d(inner, scales[0], out_shape[0], xs[0], p, rois[0])


def resize_ref(x, scales=None, sizes=None, axes=None, roi=None, mode="nearest", ctm="half_pixel",
               nearest_mode="round_prefer_floor", a=-0.75, exclude_outside=0, extrapolation_value=0.0,
               policy="stretch"):
    axes = list(range(x.ndim)) if axes is None else axes
    full_scales = [1.0] * x.ndim
    out_shape = list(x.shape)
    if sizes is not None:
        if policy == "stretch":
            for i, ax in enumerate(axes):
                out_shape[ax] = sizes[i]
                full_scales[ax] = sizes[i] / x.shape[ax]
        else:
            ratios = [sizes[i] / x.shape[ax] for i, ax in enumerate(axes)]
            s = min(ratios) if policy == "not_larger" else max(ratios)
            for ax in axes:
                full_scales[ax] = s
                out_shape[ax] = int(math.floor(s * x.shape[ax] + 0.5))
    else:
        for i, ax in enumerate(axes):
            full_scales[ax] = float(np.float32(scales[i]))
            out_shape[ax] = int(math.floor(x.shape[ax] * full_scales[ax]))
    rois = [(0.0, 1.0)] * x.ndim
    if roi is not None:
        k = len(axes)
        for i, ax in enumerate(axes):
            rois[ax] = (float(np.float32(roi[i])), float(np.float32(roi[i + k])))
    p = dict(mode=mode, ctm=ctm, nearest_mode=nearest_mode, a=a, exclude_outside=exclude_outside,
             extrapolation_value=extrapolation_value)
    y = np.zeros(out_shape, dtype=np.float64)
    for o in itertools.product(*[range(v) for v in out_shape]):
        y[o] = resize_nd(x.astype(np.float64), full_scales, out_shape, o, p, rois)
    return y


def resize_case(name, x, ref_kwargs, attrs, scales=None, sizes=None, roi=None, torch_y=None, comment=""):
    y = resize_ref(x, scales=scales, sizes=sizes, roi=roi, axes=attrs.get("axes"), **ref_kwargs)
    if torch_y is not None:
        assert np.allclose(y, torch_y, rtol=1e-5, atol=1e-5), (name, np.abs(y - torch_y).max())
    inputs = [x, None if roi is None else ("const", np.array(roi, dtype=np.float32))]
    inputs.append(None if scales is None else ("const", np.array(scales, dtype=np.float32)))
    if sizes is not None:
        inputs.append(("const", np.array(sizes, dtype=np.int64)))
    write_case(name, "Resize", inputs, [y], attrs, comment)


def resize_cases():
    x = rnd(1, 2, 5, 6)
    ty = F.interpolate(t(x), size=(3, 4), mode="bilinear", align_corners=False).numpy()
    resize_case("resize_linear_half_pixel_down", x, dict(mode="linear"), dict(mode="linear"), sizes=[1, 2, 3, 4],
                torch_y=ty, comment="numpy spec reference == torch bilinear")
    x = rnd(1, 1, 3, 4)
    ty = F.interpolate(t(x), size=(5, 7), mode="bilinear", align_corners=True).numpy()
    resize_case("resize_linear_align_corners_up", x, dict(mode="linear", ctm="align_corners"),
                dict(mode="linear", coordinate_transformation_mode="align_corners"), sizes=[1, 1, 5, 7], torch_y=ty)
    ty = F.interpolate(t(x), size=(6, 5), mode="bicubic", align_corners=False).numpy()
    resize_case("resize_cubic_half_pixel", x, dict(mode="cubic"), dict(mode="cubic"), sizes=[1, 1, 6, 5],
                torch_y=ty)
    ty = F.interpolate(t(x), size=(7, 9), mode="nearest").numpy()
    resize_case("resize_nearest_asymmetric_floor", x, dict(ctm="asymmetric", nearest_mode="floor"),
                dict(coordinate_transformation_mode="asymmetric", nearest_mode="floor"), sizes=[1, 1, 7, 9],
                torch_y=ty)
    ty = F.interpolate(t(x), size=(5, 3), mode="nearest-exact").numpy()
    resize_case("resize_nearest_half_pixel_prefer_ceil", x, dict(nearest_mode="round_prefer_ceil"),
                dict(nearest_mode="round_prefer_ceil"), sizes=[1, 1, 5, 3], torch_y=ty)
    x3 = rnd(1, 1, 3, 4, 2)
    ty = F.interpolate(t(x3), size=(5, 3, 3), mode="trilinear", align_corners=False).numpy()
    resize_case("resize_trilinear", x3, dict(mode="linear"), dict(mode="linear", axes=[2, 3, 4]), sizes=[5, 3, 3],
                torch_y=ty)

    # Modes PyTorch lacks: the numpy reference alone.
    x = rnd(1, 1, 4, 5)
    resize_case("resize_nearest_scales_prefer_floor", x, dict(), dict(), scales=[1.0, 1.0, 1.5, 0.6])
    resize_case("resize_nearest_ceil_tf_half_pixel", x, dict(ctm="tf_half_pixel_for_nn", nearest_mode="ceil"),
                dict(coordinate_transformation_mode="tf_half_pixel_for_nn", nearest_mode="ceil"),
                scales=[1.0, 1.0, 0.75, 1.6])
    resize_case("resize_cubic_exclude_outside", x, dict(mode="cubic", a=-0.5, exclude_outside=1),
                dict(mode="cubic", cubic_coeff_a=-0.5, exclude_outside=1), scales=[1.0, 1.0, 1.75, 0.8])
    resize_case("resize_cubic_asymmetric", x, dict(mode="cubic", ctm="asymmetric"),
                dict(mode="cubic", coordinate_transformation_mode="asymmetric"), sizes=[1, 1, 6, 3])
    resize_case("resize_linear_pytorch_half_pixel", x, dict(mode="linear", ctm="pytorch_half_pixel"),
                dict(mode="linear", coordinate_transformation_mode="pytorch_half_pixel"), sizes=[1, 1, 1, 3])
    resize_case("resize_linear_half_pixel_symmetric", x, dict(mode="linear", ctm="half_pixel_symmetric"),
                dict(mode="linear", coordinate_transformation_mode="half_pixel_symmetric"),
                scales=[1.0, 1.0, 1.7, 0.7])
    resize_case("resize_linear_align_corners_scales", x, dict(mode="linear", ctm="align_corners"),
                dict(mode="linear", coordinate_transformation_mode="align_corners"), scales=[1.0, 1.0, 0.6, 0.6],
                comment="ONNX uses the unrounded output length scale*in")
    resize_case("resize_tf_crop_and_resize_extrapolate", x,
                dict(mode="linear", ctm="tf_crop_and_resize", extrapolation_value=-7.0),
                dict(mode="linear", coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=-7.0,
                     axes=[2, 3]),
                sizes=[3, 4], roi=[-0.2, 0.3, 0.9, 1.25], comment="axes [2, 3]; roi reaches outside -> extrapolation")
    resize_case("resize_nearest_tf_crop_and_resize", x,
                dict(ctm="tf_crop_and_resize", extrapolation_value=2.5),
                dict(coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=2.5),
                sizes=[1, 1, 3, 3], roi=[0, 0, 0.1, -0.1, 1, 1, 0.8, 0.95])
    resize_case("resize_keep_aspect_not_larger", x, dict(mode="linear", policy="not_larger"),
                dict(mode="linear", keep_aspect_ratio_policy="not_larger", axes=[2, 3]), sizes=[3, 6])

    # Upsample (opset 9): asymmetric coordinates, nearest = floor when upsampling.
    x = rnd(1, 2, 2, 3)
    y = np.repeat(np.repeat(x, 2, axis=2), 3, axis=3)
    write_case("upsample_nearest", "Upsample", [x, ("const", np.array([1, 1, 2, 3], dtype=np.float32))], [y])
    y = resize_ref(x, scales=[1, 1, 2, 1.5], mode="linear", ctm="asymmetric")
    write_case("upsample_linear", "Upsample", [x, ("const", np.array([1, 1, 2, 1.5], dtype=np.float32))], [y],
               dict(mode="linear"))


# ------------------------------------------------------------------------------------------------
# Matrix products and LinearRecurrence


def product_cases():
    a, b = rnd(2, 1, 3, 4), rnd(3, 4, 5)
    write_case("matmul_broadcast_batch", "MatMul", [a, b], [np.matmul(a, b)])
    a, b = rnd(4), rnd(2, 4, 3)
    write_case("matmul_vector_lhs", "MatMul", [a, b], [np.matmul(a, b)])
    a, b = rnd(2, 3, 4), rnd(4)
    write_case("matmul_vector_rhs", "MatMul", [a, b], [np.matmul(a, b)])
    a, b = rnd(5), rnd(5)
    write_case("matmul_dot", "MatMul", [a, b], [np.matmul(a, b)])
    ai, bi = RNG.integers(-5, 5, size=(2, 3)), RNG.integers(-5, 5, size=(3, 2))
    write_case("matmul_i64", "MatMul", [ai, bi], [ai @ bi])

    a, b, c = rnd(4, 3), rnd(5, 4), rnd(5)
    write_case("gemm_trans_alpha_beta", "Gemm", [a, b, c], [0.5 * a.T @ b.T + 2.0 * c],
               dict(transA=1, transB=1, alpha=0.5, beta=2.0))
    a, b, c = rnd(2, 3), rnd(3, 4), rnd(2, 1)
    write_case("gemm_c_column", "Gemm", [a, b, c], [a @ b + c])
    write_case("gemm_no_c", "Gemm", [a, b], [a @ b])

    x, w, bias = rnd(2, 3, 4), rnd(5, 4), rnd(5)
    write_case("linear_bias", "Linear", [x, w, bias], [x @ w.T + bias])
    write_case("linear_no_bias", "Linear", [x, w], [x @ w.T])

    def einsum(name, eq, *ops):
        write_case(name, "Einsum", list(ops), [np.einsum(eq, *[o.astype(np.float64) for o in ops])],
                   dict(equation=eq))

    einsum("einsum_batch_matmul", "bij,bjk->bik", rnd(2, 3, 4), rnd(2, 4, 2))
    einsum("einsum_diagonal", "ii->i", rnd(3, 3))
    einsum("einsum_trace_implicit", "ii", rnd(4, 4))
    einsum("einsum_ellipsis_broadcast", "...ij,...jk->...ik", rnd(2, 1, 3, 4), rnd(5, 4, 2))
    einsum("einsum_three_operands", "ij,jk,kl->il", rnd(2, 3), rnd(3, 4), rnd(4, 2))
    einsum("einsum_outer", "i,j->ij", rnd(3), rnd(4))
    einsum("einsum_implicit_order", "bA,Ac", rnd(2, 3), rnd(3, 4))
    einsum("einsum_diag_3d", "iji->ji", rnd(3, 2, 3))
    einsum("einsum_sum_all", "ijk->", rnd(2, 3, 2))
    einsum("einsum_implicit_ellipsis", "...ab,b", rnd(2, 3, 4), rnd(4))
    einsum("einsum_size1_broadcast", "ij,ij->ij", rnd(1, 3), rnd(2, 3))

    a, b, h0 = rnd(2, 5, 3, 4, lo=-1, hi=1), rnd(2, 5, 3, 4), rnd(2, 3, 4)
    hs = np.zeros((2, 5, 3, 4), dtype=np.float64)
    h = h0.astype(np.float64)
    for step in range(5):
        h = a[:, step] * h + b[:, step]
        hs[:, step] = h
    write_case("linrec_h0", "LinearRecurrence", [a, b, h0], [hs, h])
    a, b = rnd(2, 3, 6, lo=0, hi=1), rnd(2, 3, 6)
    hs = np.zeros((2, 3, 6), dtype=np.float64)
    h = np.zeros((2, 3))
    for step in range(6):
        h = a[:, :, step] * h + b[:, :, step]
        hs[:, :, step] = h
    write_case("linrec_axis2_no_h0", "LinearRecurrence", [a, b], [hs, h], dict(axis=2))


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".txt"):
            os.remove(os.path.join(OUT, f))
    product_cases()
    conv_cases()
    conv_transpose_cases()
    deform_cases()
    pool_cases()
    norm_cases()
    resize_cases()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("wrote %d cases, %d bytes" % (len(os.listdir(OUT)), total))
    assert total < 100 * 1024, "keep tests/data/nn under 100 KB"


if __name__ == "__main__":
    main()
