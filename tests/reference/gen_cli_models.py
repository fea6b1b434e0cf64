#!/usr/bin/python3
"""Writes the tiny ONNX models and .npy inputs/outputs that tests/cmake/cli.cmake runs `seqrun` on.

Run from anywhere: /usr/bin/python3 tests/reference/gen_cli_models.py
Every value is a small multiple of 1/4, so float32 sums are exact and the expected outputs (computed here
with numpy) must match seqrun's byte for byte. The script prints the summary line `seqrun run` should
print for each case; cli.cmake's PASS regexes copy those numbers.
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "cli")


def path(name):
    return os.path.join(OUT, name)


def save_model(graph, name, opset=17):
    model = helper.make_model(graph, producer_name="gen_cli_models.py",
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path(name))


def summary(name, arr):
    a = np.asarray(arr, dtype=np.float64)
    finite = a[~np.isnan(a)]
    line = "%s: %s%s min=%.6g max=%.6g mean=%.6g" % (
        name, {"float32": "f32"}[str(arr.dtype)], list(arr.shape), finite.min(), finite.max(), finite.mean())
    nans = int(np.isnan(a).sum())
    if nans:
        line += " nan=%d" % nans
    return line


def main():
    os.makedirs(OUT, exist_ok=True)

    # linear.onnx: y = x @ W + b, x: f32[batch, 4], W: [4, 3], b: [3].
    w = (np.arange(12, dtype=np.float32).reshape(4, 3) - 5.0) * 0.25
    b = np.array([0.5, -1.0, 0.25], dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"], name="matmul"),
         helper.make_node("Add", ["xw", "b"], ["y"], name="add_bias")],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")])
    save_model(graph, "linear.onnx")
    x = np.array([[1.0, -2.0, 0.5, 3.0], [0.0, 1.5, -1.0, 2.0]], dtype=np.float32)
    y = x @ w + b
    np.save(path("linear_x.npy"), x)
    np.save(path("linear_y_expected.npy"), y)
    print(summary("y", y))
    # Inputs the CLI must reject: wrong dtype, wrong static dim.
    np.save(path("linear_x_f64.npy"), x.astype(np.float64))
    np.save(path("linear_x_2x5.npy"), np.zeros((2, 5), dtype=np.float32))

    # two_outputs.onnx: "out/sum" = a + b and "prod:0" = a * b (names that need sanitizing as file names).
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["out/sum"], name="sum"),
         helper.make_node("Mul", ["a", "b"], ["prod:0"], name="prod")],
        "two_outputs",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n"]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("out/sum", TensorProto.FLOAT, ["n"]),
         helper.make_tensor_value_info("prod:0", TensorProto.FLOAT, ["n"])])
    save_model(graph, "two_outputs.onnx")
    a = np.array([1.0, 2.0, -3.0], dtype=np.float32)
    bb = np.array([0.5, -4.0, 2.0], dtype=np.float32)
    np.save(path("two_outputs_a.npy"), a)
    np.save(path("two_outputs_b.npy"), bb)
    np.save(path("two_outputs_sum_expected.npy"), a + bb)
    np.save(path("two_outputs_prod_expected.npy"), a * bb)
    print(summary("out/sum", a + bb))
    print(summary("prod:0", a * bb))

    # log.onnx: y = Log(x); a negative input gives NaN (counted by `run`, an error under --check-finite).
    graph = helper.make_graph(
        [helper.make_node("Log", ["x"], ["y"], name="log_node")],
        "log",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
    save_model(graph, "log.onnx")
    xl = np.array([-1.0, 1.0, 4.0], dtype=np.float32)
    np.save(path("log_x.npy"), xl)
    with np.errstate(invalid="ignore"):
        print(summary("y", np.log(xl)))


if __name__ == "__main__":
    main()
