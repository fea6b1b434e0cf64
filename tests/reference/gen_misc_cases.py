#!/usr/bin/python3
"""Writes the one-node misc-family cases test_ref_misc.cpp replays (tests/data/misc/*.txt).

Run from anywhere: /usr/bin/python3 tests/reference/gen_misc_cases.py   (torch 1.13 + numpy; a second)

Expected outputs come from PyTorch or numpy where they implement the op with ONNX's semantics
(grid_sample, max_unpool2d, convolutions of the zero-point-shifted integers, the torch windows,
numpy.fft for DFT/STFT, numpy.unique, numpy.linalg.det) and otherwise from the small numpy
implementations of the ONNX specification below (quantization rounding and saturation, RoiAlign,
MelWeightMatrix).

File format: as tests/reference/gen_nn_cases.py (op / attr / in / const / out / tol records), with any
seqrun dtype name (f32, f64, f16, i64, i32, i8, u8, u16, i16) for tensors; values are written as
decimal text that reads back exactly in that dtype.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "misc")
RNG = np.random.default_rng(20240613)
torch.set_num_threads(1)

DTYPES = {np.float32: "f32", np.float64: "f64", np.float16: "f16", np.int64: "i64", np.int32: "i32",
          np.int8: "i8", np.uint8: "u8", np.uint16: "u16", np.int16: "i16"}


def rnd(*shape, lo=-2.0, hi=2.0):
    return np.round(RNG.uniform(lo, hi, size=shape), 2).astype(np.float32)


def ints(dtype, *shape, lo=None, hi=None):
    info = np.iinfo(dtype)
    lo = info.min if lo is None else lo
    hi = info.max if hi is None else hi
    return RNG.integers(lo, hi + 1, size=shape).astype(dtype)


def fmt_values(a):
    a = np.asarray(a)
    if a.dtype == np.float16:
        return " ".join(repr(float(v)) for v in a.ravel())
    if a.dtype.kind == "f":
        return " ".join(repr(v) for v in a.ravel())  # shortest text that reads back exactly
    return " ".join(str(int(v)) for v in a.ravel())


def tensor_line(kind, a):
    a = np.asarray(a)
    dims = " ".join(str(d) for d in a.shape)
    return "%s %s %d %s\n%s\n" % (kind, DTYPES[a.dtype.type], a.ndim, dims, fmt_values(a))


def write_case(name, op, inputs, outputs, attrs=None, comment="", tol=None):
    """inputs: list of ndarray | None | ('const', ndarray)."""
    lines = ["# " + comment + "\n"] if comment else []
    lines.append("op %s\n" % op)
    for key, val in (attrs or {}).items():
        if isinstance(val, str):
            lines.append("attr %s s %s\n" % (key, val))
        elif isinstance(val, float):
            lines.append("attr %s f %.9g\n" % (key, val))
        elif isinstance(val, int):
            lines.append("attr %s i %d\n" % (key, val))
        else:
            lines.append("attr %s is %s\n" % (key, " ".join(str(v) for v in val)))
    for x in inputs:
        if x is None:
            lines.append("in none\n")
        elif isinstance(x, tuple):
            lines.append(tensor_line("const", x[1]))
        else:
            lines.append(tensor_line("in", x))
    for y in outputs:
        lines.append(tensor_line("out", y))
    if tol:
        lines.append("tol %g %g\n" % tol)
    with open(os.path.join(OUT, name + ".txt"), "w") as f:
        f.writelines(lines)


# --------------------------------------------------------------------------------------------------
# GridSample: torch.nn.functional.grid_sample

def grid_sample_cases():
    modes = {"bilinear": "linear", "nearest": "nearest", "bicubic": "cubic"}
    for torch_mode, onnx_mode in modes.items():
        for padding in ("zeros", "border", "reflection"):
            for align in (0, 1):
                x = rnd(2, 2, 3, 4)
                grid = rnd(2, 3, 2, 2, lo=-1.3, hi=1.3)
                if torch_mode == "bicubic" and padding != "zeros":
                    # PyTorch pads each cubic tap's coordinate; ONNX pads the sample point and reads taps
                    # with the padding rule. Keep the sample points inside so both definitions agree.
                    grid = rnd(2, 3, 2, 2, lo=-1.0, hi=1.0)
                y = F.grid_sample(torch.from_numpy(x), torch.from_numpy(grid), mode=torch_mode, padding_mode=padding,
                                  align_corners=bool(align)).numpy()
                write_case("gridsample_2d_%s_%s_align%d" % (onnx_mode, padding, align), "GridSample", [x, grid], [y],
                           {"mode": onnx_mode, "padding_mode": padding, "align_corners": align},
                           "torch grid_sample(mode=%s, padding_mode=%s, align_corners=%d)" % (torch_mode, padding, align))
    # The opset-16 mode names still work.
    x = rnd(1, 1, 3, 3)
    grid = rnd(1, 2, 2, 2, lo=-1.0, hi=1.0)
    y = F.grid_sample(torch.from_numpy(x), torch.from_numpy(grid), mode="bicubic", align_corners=False).numpy()
    write_case("gridsample_2d_old_name_bicubic", "GridSample", [x, grid], [y], {"mode": "bicubic"},
               "opset-16 name 'bicubic' = cubic")
    for torch_mode, onnx_mode in (("bilinear", "linear"), ("nearest", "nearest")):
        for padding in ("zeros", "border", "reflection"):
            x = rnd(1, 2, 3, 2, 4)
            grid = rnd(1, 2, 3, 2, 3, lo=-1.2, hi=1.2)
            y = F.grid_sample(torch.from_numpy(x), torch.from_numpy(grid), mode=torch_mode, padding_mode=padding,
                              align_corners=False).numpy()
            write_case("gridsample_3d_%s_%s" % (onnx_mode, padding), "GridSample", [x, grid], [y],
                       {"mode": onnx_mode, "padding_mode": padding},
                       "torch grid_sample on a 5-D input (volumetric, mode=%s)" % torch_mode)


# --------------------------------------------------------------------------------------------------
# Quantization (numpy implementation of the spec; float32 arithmetic as the kernels do)

def saturate(v, dtype):
    info = np.iinfo(dtype)
    return np.clip(v, info.min, info.max).astype(dtype)


def quant_param(p, x_shape, axis, block):
    """Broadcasts a per-tensor / per-axis / blocked parameter to x's shape."""
    p = np.asarray(p)
    if p.size == 1 and block == 0:
        return np.broadcast_to(p.reshape(()), x_shape)
    axis = axis % len(x_shape)
    if block == 0:
        shape = [1] * len(x_shape)
        shape[axis] = -1
        return np.broadcast_to(p.reshape(shape), x_shape)
    return np.repeat(p, block, axis=axis).take(range(x_shape[axis]), axis=axis)


def quantize(x, scale, zp, axis=1, block=0, dtype=np.uint8):
    s = quant_param(scale, x.shape, axis, block).astype(np.float32)
    z = quant_param(zp, x.shape, axis, block).astype(np.float64) if zp is not None else 0.0
    return saturate(np.rint((x.astype(np.float32) / s).astype(np.float32)).astype(np.float64) + z, dtype)


def quantization_cases():
    x = np.array([[0.0, 2.5, -2.5, 3.5, 1000.0, -1000.0], [0.49, 0.5, 1.5, -0.5, -1.5, 7.0]], np.float32)
    scale = np.array([1.0, 0.5], np.float32)
    zp = np.array([3, -4], np.int8)
    write_case("quantize_axis0_i8_round_half_even", "QuantizeLinear", [x, scale, zp], [quantize(x, scale, zp, 0, 0, np.int8)],
               {"axis": 0}, "per-axis i8: ties to even, saturation")
    x = rnd(2, 5, 3, lo=-5, hi=5)
    scale = np.array(RNG.uniform(0.02, 0.1, size=(2, 3, 3)), np.float32)
    zp = ints(np.uint8, 2, 3, 3, lo=100, hi=150)
    write_case("quantize_blocked_axis1", "QuantizeLinear", [x, scale, zp], [quantize(x, scale, zp, 1, 2)],
               {"axis": 1, "block_size": 2}, "blocked: block_size 2 along axis 1 (ceil(5 / 2) = 3 blocks)")
    x = rnd(4, lo=-300, hi=300)
    write_case("quantize_u16_output_dtype", "QuantizeLinear", [x, np.array(0.01, np.float32)],
               [quantize(x, 0.01, None, dtype=np.uint16)], {"output_dtype": 4},
               "no zero point: output_dtype UINT16 picks the type")
    write_case("quantize_default_u8", "QuantizeLinear", [x, np.array(2.0, np.float32)],
               [quantize(x, 2.0, None)], {}, "no zero point, no output_dtype: u8")

    xq = ints(np.int8, 2, 3, 4)
    scale = np.array([0.5, 0.25, 2.0], np.float32)
    zp = np.array([-3, 0, 5], np.int8)
    y = ((xq.astype(np.int32) - zp.reshape(1, 3, 1)).astype(np.float32) * scale.reshape(1, 3, 1)).astype(np.float32)
    write_case("dequantize_axis1_i8", "DequantizeLinear", [xq, scale, zp], [y], {}, "per-axis (default axis 1)")
    xq = ints(np.uint8, 3, 4)
    scale = np.array(RNG.uniform(0.1, 1.0, size=(3, 2)), np.float32)
    zp = ints(np.uint8, 3, 2)
    y = ((xq.astype(np.int32) - np.repeat(zp, 2, axis=1)).astype(np.float32) * np.repeat(scale, 2, axis=1))
    write_case("dequantize_blocked", "DequantizeLinear", [xq, scale, zp], [y.astype(np.float32)],
               {"axis": 1, "block_size": 2}, "blocked along axis 1")
    xq = np.array([-100000, 0, 7, 123456], np.int32)
    write_case("dequantize_i32_no_zero_point", "DequantizeLinear", [xq, np.array(0.5, np.float32)],
               [(xq.astype(np.float32) * np.float32(0.5)).astype(np.float32)], {}, "int32 input, no zero point")

    # MatMulInteger: batched broadcast, per-row / per-column zero points.
    a = ints(np.uint8, 2, 1, 3, 4)
    b = ints(np.int8, 3, 4, 5)
    azp = ints(np.uint8, 3)
    bzp = ints(np.int8, 5)
    y = np.matmul(a.astype(np.int64) - azp.reshape(3, 1), b.astype(np.int64) - bzp.reshape(1, 5)).astype(np.int32)
    write_case("matmulinteger_batched_row_col_zero_points", "MatMulInteger", [a, b, azp, bzp], [y], {},
               "numpy matmul of shifted integers, batch broadcast")
    a = ints(np.int8, 4)
    b = ints(np.int8, 4, 3)
    y = np.matmul(a.astype(np.int64), b.astype(np.int64)).astype(np.int32)
    write_case("matmulinteger_vector_no_zero_points", "MatMulInteger", [a, b], [y], {}, "1-D A, no zero points")

    # QLinearMatMul: per-row a_scale/a_zero_point, per-column b, i8 output.
    a = ints(np.uint8, 2, 3, 4)
    b = ints(np.int8, 4, 5)
    a_scale = np.array(RNG.uniform(0.01, 0.05, size=3), np.float32)
    azp = ints(np.uint8, 3, lo=100, hi=150)
    b_scale = np.array(RNG.uniform(0.01, 0.05, size=5), np.float32)
    bzp = ints(np.int8, 5, lo=-10, hi=10)
    y_scale = np.array(0.05, np.float32)
    yzp = np.array(-7, np.int8)
    acc = np.matmul(a.astype(np.int64) - azp.reshape(3, 1), b.astype(np.int64) - bzp.reshape(1, 5))
    mult = (a_scale.reshape(3, 1) * b_scale.reshape(1, 5) / y_scale).astype(np.float32)
    y = saturate(np.rint((acc.astype(np.float32) * mult).astype(np.float32)).astype(np.float64) + yzp, np.int8)
    write_case("qlinearmatmul_per_row_col_i8", "QLinearMatMul", [a, a_scale, azp, b, b_scale, bzp, y_scale, yzp], [y],
               {}, "requantized with multiplier a_scale * b_scale / y_scale (float32)")

    # ConvInteger / QLinearConv: groups, strides, dilations, pads; per-channel weight zero point.
    x = ints(np.uint8, 2, 4, 6, 7)
    w = ints(np.int8, 6, 2, 3, 2, lo=-20, hi=20)
    xzp = np.array(128, np.uint8)
    wzp = ints(np.int8, 6, lo=-3, hi=3)
    attrs = {"group": 2, "strides": [2, 1], "dilations": [1, 2], "pads": [1, 0, 2, 1]}
    xs = torch.from_numpy(x.astype(np.float64) - 128)
    ws = torch.from_numpy(w.astype(np.float64) - wzp.reshape(6, 1, 1, 1))
    xs = F.pad(xs, (0, 1, 1, 2))  # pads [top, left, bottom, right] -> F.pad (left, right, top, bottom)
    acc = F.conv2d(xs, ws, stride=(2, 1), dilation=(1, 2), groups=2).numpy().astype(np.int64)
    write_case("convinteger_group_stride_dilation_pads", "ConvInteger", [x, w, xzp, wzp], [acc.astype(np.int32)], attrs,
               "torch conv2d (float64, exact) of x - 128 and w - w_zero_point[m]; padding holds the zero point")
    x_scale = np.array(0.02, np.float32)
    w_scale = np.array(RNG.uniform(0.005, 0.02, size=6), np.float32)
    y_scale = np.array(0.3, np.float32)
    yzp = np.array(120, np.uint8)
    bias = ints(np.int32, 6, lo=-500, hi=500)
    mult = (x_scale * w_scale / y_scale).astype(np.float32).reshape(1, 6, 1, 1)
    v = ((acc + bias.reshape(1, 6, 1, 1)).astype(np.float32) * mult).astype(np.float32)
    y = saturate(np.rint(v).astype(np.float64) + 120, np.uint8)
    write_case("qlinearconv_per_channel_bias", "QLinearConv", [x, x_scale, xzp, w, w_scale, wzp, y_scale, yzp, bias],
               [y], attrs, "the ConvInteger accumulators + B, requantized per output channel")


# --------------------------------------------------------------------------------------------------
# RoiAlign (numpy implementation of the ONNX / Caffe2 algorithm)

def roi_align(X, rois, batch_indices, oh, ow, sampling_ratio, spatial_scale, mode, half_pixel):
    N, C, H, W = X.shape
    Y = np.zeros((len(rois), C, oh, ow), np.float64)
    off = 0.5 if half_pixel else 0.0
    for n, roi in enumerate(rois.astype(np.float64)):
        x1, y1, x2, y2 = roi * spatial_scale - off
        rw, rh = x2 - x1, y2 - y1
        if not half_pixel:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / oh, rw / ow
        gh = sampling_ratio if sampling_ratio > 0 else int(np.ceil(rh / oh))
        gw = sampling_ratio if sampling_ratio > 0 else int(np.ceil(rw / ow))
        count = max(gh * gw, 1)
        img = X[batch_indices[n]].astype(np.float64)
        for ph in range(oh):
            for pw in range(ow):
                acc = np.zeros(C)
                best = None
                for iy in range(gh):
                    yy = y1 + ph * bh + (iy + 0.5) * bh / gh
                    for ix in range(gw):
                        xx = x1 + pw * bw + (ix + 0.5) * bw / gw
                        vals = np.zeros((4, C))
                        if not (yy < -1 or yy > H or xx < -1 or xx > W):
                            y, x = max(yy, 0.0), max(xx, 0.0)
                            yl, xl = int(y), int(x)
                            if yl >= H - 1:
                                yh = yl = H - 1
                                y = float(yl)
                            else:
                                yh = yl + 1
                            if xl >= W - 1:
                                xh = xl = W - 1
                                x = float(xl)
                            else:
                                xh = xl + 1
                            ly, lx = y - yl, x - xl
                            hy, hx = 1 - ly, 1 - lx
                            vals = np.stack([hy * hx * img[:, yl, xl], hy * lx * img[:, yl, xh],
                                             ly * hx * img[:, yh, xl], ly * lx * img[:, yh, xh]])
                        if mode == "avg":
                            acc += vals.sum(axis=0)
                        else:
                            m = vals.max(axis=0)
                            best = m if best is None else np.maximum(best, m)
                Y[n, :, ph, pw] = acc / count if mode == "avg" else (best if best is not None else 0)
    return Y.astype(np.float32)


def roi_align_cases():
    X = rnd(2, 3, 6, 7)
    rois = np.array([[0.5, 0.5, 5.2, 4.1], [1.0, 0.0, 3.0, 6.0], [-1.0, 2.0, 8.0, 9.5], [2.0, 2.0, 2.4, 2.2]],
                    np.float32)
    bi = np.array([0, 1, 1, 0], np.int64)
    for mode in ("avg", "max"):
        for half_pixel in (True, False):
            for sr in (0, 2):
                ctm = "half_pixel" if half_pixel else "output_half_pixel"
                Y = roi_align(X, rois, bi, 3, 2, sr, 0.5 if sr else 1.0, mode, half_pixel)
                write_case("roialign_%s_%s_sr%d" % (mode, ctm, sr), "RoiAlign", [X, rois, bi], [Y],
                           {"mode": mode, "coordinate_transformation_mode": ctm, "output_height": 3,
                            "output_width": 2, "sampling_ratio": sr, "spatial_scale": 0.5 if sr else 1.0},
                           "numpy RoiAlign (mode %s, %s, sampling_ratio %d)" % (mode, ctm, sr))


# --------------------------------------------------------------------------------------------------
# MaxUnpool: torch max_pool2d indices (per plane) made flat over the tensor, as ONNX MaxPool's are

def max_unpool_cases():
    for name, size, kernel, stride, pad in (("k2s2_odd", (5, 5), 2, 2, 0), ("k3s2_pad1", (6, 7), 3, 2, 1)):
        x = torch.from_numpy(rnd(2, 3, *size))
        pooled, idx = F.max_pool2d(x, kernel, stride, pad, return_indices=True)
        y = F.max_unpool2d(pooled, idx, kernel, stride, pad, output_size=size).numpy()
        plane = size[0] * size[1]
        flat = idx.numpy() + (np.arange(6).reshape(2, 3, 1, 1) * plane)
        write_case("maxunpool_%s_output_shape" % name, "MaxUnpool",
                   [pooled.numpy(), flat.astype(np.int64), ("const", np.array([2, 3, *size], np.int64))], [y],
                   {"kernel_shape": [kernel, kernel], "strides": [stride, stride], "pads": [pad] * 4},
                   "torch max_unpool2d(output_size=%s)" % (size,))
    x = torch.from_numpy(rnd(1, 2, 4, 6))
    pooled, idx = F.max_pool2d(x, 2, 2, return_indices=True)
    y = F.max_unpool2d(pooled, idx, 2, 2).numpy()
    flat = idx.numpy() + np.arange(2).reshape(1, 2, 1, 1) * 24
    write_case("maxunpool_default_shape", "MaxUnpool", [pooled.numpy(), flat.astype(np.int64)], [y],
               {"kernel_shape": [2, 2], "strides": [2, 2]}, "torch max_unpool2d, shape from the attributes")


# --------------------------------------------------------------------------------------------------
# Unique, Det

def unique_cases():
    x = np.array([3, 1, 2, 3, 3, -7, 2, 0, 1], np.int64)
    for sorted_ in (1, 0):
        y, idx, inv, cnt = np.unique(x, return_index=True, return_inverse=True, return_counts=True)
        if not sorted_:
            order = np.argsort(idx)
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            y, idx, cnt, inv = y[order], idx[order], cnt[order], rank[inv]
        write_case("unique_i64_sorted%d" % sorted_, "Unique", [x], [y, idx, inv, cnt], {"sorted": sorted_},
                   "numpy.unique (sorted=0: ordered by first occurrence)")
    x = np.array([[[1, 2], [0, 5]], [[1, 2], [0, 5]], [[0, 9], [0, 5]], [[1, 2], [0, 4]]], np.float32)
    x = x.transpose(1, 0, 2)  # [2, 4, 2]: slices along axis 1
    y, idx, inv, cnt = np.unique(x, axis=1, return_index=True, return_inverse=True, return_counts=True)
    write_case("unique_f32_axis1", "Unique", [x], [y, idx, inv.reshape(-1), cnt], {"axis": 1},
               "numpy.unique(axis=1): slices compared lexicographically")


def det_cases():
    x = rnd(3, 4, 4)
    x[1, 3] = x[1, 0] * 2  # singular
    write_case("det_batched_4x4", "Det", [x], [np.linalg.det(x.astype(np.float64)).astype(np.float32)], {},
               "numpy.linalg.det", tol=(1e-4, 1e-4))
    x = rnd(2, 1, 3, 3)
    write_case("det_rank4", "Det", [x], [np.linalg.det(x.astype(np.float64)).astype(np.float32)], {},
               "numpy.linalg.det over two batch dims", tol=(1e-4, 1e-4))


# --------------------------------------------------------------------------------------------------
# DFT, STFT, windows, MelWeightMatrix

def as_complex_last(z):
    return np.stack([z.real, z.imag], axis=-1).astype(np.float32)


def dft_cases():
    x = rnd(2, 6, 1)
    write_case("dft_real_axis1", "DFT", [x, None, ("const", np.array(1, np.int64))],
               [as_complex_last(np.fft.fft(x[..., 0].astype(np.float64), axis=1))], {}, "numpy.fft.fft")
    xc = rnd(2, 5, 3, 2)
    z = xc[..., 0].astype(np.float64) + 1j * xc[..., 1]
    write_case("dft_complex_inverse_axis2", "DFT", [xc, None, ("const", np.array(2, np.int64))],
               [as_complex_last(np.fft.ifft(z, axis=2))], {"inverse": 1}, "numpy.fft.ifft")
    x = rnd(1, 8, 1)
    write_case("dft_onesided_default_axis", "DFT", [x], [as_complex_last(np.fft.rfft(x[..., 0].astype(np.float64), axis=1))],
               {"onesided": 1}, "numpy.fft.rfft; default axis -2")
    x = rnd(2, 3, 4, 1)
    write_case("dft_length_pad_negative_axis", "DFT", [x, ("const", np.array(7, np.int64)), ("const", np.array(-3, np.int64))],
               [as_complex_last(np.fft.fft(x[..., 0].astype(np.float64), n=7, axis=1))], {},
               "numpy.fft.fft(n=7): zero padding; axis -3")
    write_case("dft_length_truncate", "DFT", [x, ("const", np.array(3, np.int32))],
               [as_complex_last(np.fft.fft(x[..., 0].astype(np.float64), n=3, axis=2))], {},
               "numpy.fft.fft(n=3): truncation along the default axis")


def stft_cases():
    sig = rnd(2, 20, 1)
    win = np.hanning(9)[:8].astype(np.float32)
    frames = (20 - 8) // 3 + 1
    out = np.stack([np.fft.rfft(sig[b, f * 3:f * 3 + 8, 0].astype(np.float64) * win) for b in range(2)
                    for f in range(frames)]).reshape(2, frames, 5)
    write_case("stft_window_onesided", "STFT", [sig, np.array(3, np.int64), win], [as_complex_last(out)], {},
               "numpy.fft.rfft of windowed frames")
    sig = rnd(1, 11, 2)
    z = sig[0, :, 0].astype(np.float64) + 1j * sig[0, :, 1]
    frames = (11 - 4) // 2 + 1
    out = np.stack([np.fft.fft(z[f * 2:f * 2 + 4]) for f in range(frames)]).reshape(1, frames, 4)
    write_case("stft_complex_frame_length", "STFT", [sig, np.array(2, np.int32), None, np.array(4, np.int64)],
               [as_complex_last(out)], {"onesided": 0}, "numpy.fft.fft of frames of a complex signal")


def window_cases():
    f64 = torch.float64
    for name, fn in (("hann", lambda n, periodic: torch.hann_window(n, periodic, dtype=f64)),
                     ("hamming", lambda n, periodic: torch.hamming_window(n, periodic, alpha=25 / 46, beta=21 / 46,
                                                                          dtype=f64)),
                     ("blackman", lambda n, periodic: torch.blackman_window(n, periodic, dtype=f64))):
        op = {"hann": "HannWindow", "hamming": "HammingWindow", "blackman": "BlackmanWindow"}[name]
        for periodic in (1, 0):
            for n in (1, 7, 16):
                w = fn(n, periodic=bool(periodic)).numpy()
                comment = "torch.%s_window" % name
                if n == 1 and periodic:
                    # torch returns [1] for any length-1 window; ONNX's formula (N = size = 1) gives w(0).
                    w = np.array([{"hann": 0.0, "hamming": 4 / 46, "blackman": 0.0}[name]])
                    comment = "ONNX formula at k = 0 with N = 1"
                write_case("window_%s_p%d_n%d" % (name, periodic, n), op, [("const", np.array(n, np.int32))],
                           [w.astype(np.float32)], {"periodic": periodic}, comment)
        w = fn(10, periodic=True).numpy()
        write_case("window_%s_f64" % name, op, [np.array(10, np.int64)], [w], {"output_datatype": 11},
                   "torch.%s_window, output_datatype DOUBLE" % name, tol=(1e-9, 1e-12))


def mel_weight_matrix(num_mel_bins, dft_length, sample_rate, lower, upper):
    spectrum = dft_length // 2 + 1
    low_mel = 2595 * np.log10(1 + lower / 700)
    high_mel = 2595 * np.log10(1 + upper / 700)
    step = (high_mel - low_mel) / (num_mel_bins + 2)
    mel = np.arange(num_mel_bins + 2) * step + low_mel
    hz = 700 * (np.power(10, mel / 2595) - 1)
    bins = np.floor((dft_length + 1) * hz / sample_rate).astype(int)
    out = np.zeros((spectrum, num_mel_bins))
    for i in range(num_mel_bins):
        left, centre, right = bins[i], bins[i + 1], bins[i + 2]
        if centre == left:
            out[centre, i] = 1
        else:
            for j in range(left, centre + 1):
                out[j, i] = (j - left) / (centre - left)
        for j in range(centre, right):
            out[j, i] = (right - j) / (right - centre)
    return out


def mel_cases():
    for name, args in (("speech", (10, 64, 16000, 20.0, 8000.0)), ("odd_length", (5, 31, 8000, 100.0, 3000.0))):
        m, n, sr, lo, hi = args
        out = mel_weight_matrix(m, n, sr, lo, hi)
        write_case("melweightmatrix_%s" % name, "MelWeightMatrix",
                   [np.array(m, np.int32), np.array(n, np.int64), np.array(sr, np.int32), np.array(lo, np.float32),
                    np.array(hi, np.float32)], [out.astype(np.float32)], {},
                   "numpy implementation of the ONNX MelWeightMatrix definition")


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".txt"):
            os.remove(os.path.join(OUT, f))
    grid_sample_cases()
    quantization_cases()
    roi_align_cases()
    max_unpool_cases()
    unique_cases()
    det_cases()
    dft_cases()
    stft_cases()
    window_cases()
    mel_cases()


if __name__ == "__main__":
    main()
