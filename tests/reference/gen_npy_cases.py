#!/usr/bin/python3
"""Writes the small .npy files tests/unit/test_npy.cpp reads (tests/data/npy/), all with numpy itself.

Run from anywhere: /usr/bin/python3 tests/reference/gen_npy_cases.py
The values here are the ones test_npy.cpp spells out; change both together.
"""
import io
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "npy")


def save(name, arr, version=None):
    path = os.path.join(OUT, name)
    if version is None:
        np.save(path, arr, allow_pickle=False)
    else:
        with open(path, "wb") as f:
            np.lib.format.write_array(f, arr, version=version, allow_pickle=False)


def raw(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def npy_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def main():
    os.makedirs(OUT, exist_ok=True)
    f32 = np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5 - 1.0  # [[-1, -0.5, 0], [0.5, 1, 1.5]]

    # Every supported dtype, values that are exact in it.
    save("f32_2x3.npy", f32)
    save("f64_scalar.npy", np.array(3.25, dtype=np.float64))
    save("f16_4.npy", np.array([1.0, -2.5, 65504.0, 2.0 ** -24], dtype=np.float16))
    save("i64_3.npy", np.array([-(2 ** 40), 0, 2 ** 62], dtype=np.int64))
    save("i32_2x2.npy", np.array([[1, -2], [3, -4]], dtype=np.int32))
    save("i8_4.npy", np.array([-128, -1, 0, 127], dtype=np.int8))
    save("u8_4.npy", np.array([0, 1, 200, 255], dtype=np.uint8))
    save("bool_5.npy", np.array([True, False, True, True, False]))
    save("f32_0x3.npy", np.zeros((0, 3), dtype=np.float32))
    save("f32_v2.npy", f32, version=(2, 0))
    save("f32_v3.npy", f32, version=(3, 0))

    # Files the reader must reject, each with an error naming the file.
    save("f32_big_endian.npy", f32.astype(">f4"))
    save("f32_fortran.npy", np.asfortranarray(f32))
    save("c64_complex.npy", np.array([1 + 2j], dtype=np.complex64))
    save("structured.npy", np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))
    obj = np.array([1, "a"], dtype=object)
    with open(os.path.join(OUT, "object.npy"), "wb") as f:
        np.lib.format.write_array(f, obj, allow_pickle=True)
    good = npy_bytes(f32)
    raw("f32_truncated_data.npy", good[:-4])
    raw("f32_trailing_bytes.npy", good + b"\0\0\0\0")
    raw("truncated_header.npy", good[:40])
    raw("bad_magic.npy", b"NOTNUMPY" + good[8:])


if __name__ == "__main__":
    main()
