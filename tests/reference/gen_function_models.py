#!/usr/bin/python3
"""Writes ONNX models that call model-local functions (FunctionProto), in the ONNX backend-test layout,
with expected outputs computed by numpy, into tests/data/onnx-functions/. Run: /usr/bin/python3 <this file>.

- function_gelu_block: y = LinearGelu(x, W, b) where LinearGelu is a local function
  (MatMul, Add, then an erf-GELU written out), called twice, the second call inside another function.
- function_attr_ref: a local function whose LeakyRelu alpha and Transpose perm come from the call's
  attributes (ref_attr_name), called with two different alphas.
"""
import math
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "onnx-functions")
rng = np.random.default_rng(7)


def erf(a):
    return np.vectorize(math.erf)(a)


def save(name, model, inputs, outputs):
    d = os.path.join(OUT, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(d, "model.onnx"))
    for i, (n, a) in enumerate(inputs):
        with open(os.path.join(d, "test_data_set_0", f"input_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(a, n).SerializeToString())
    for i, (n, a) in enumerate(outputs):
        with open(os.path.join(d, "test_data_set_0", f"output_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(a, n).SerializeToString())


def gelu_block():
    opset = [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)]
    lin_gelu = helper.make_function(
        "local", "LinearGelu", ["x", "w", "b"], ["y"],
        [
            helper.make_node("MatMul", ["x", "w"], ["h0"]),
            helper.make_node("Add", ["h0", "b"], ["h"]),
            helper.make_node("Constant", [], ["rsqrt2"], value=numpy_helper.from_array(np.array(1 / math.sqrt(2), np.float32))),
            helper.make_node("Constant", [], ["half"], value=numpy_helper.from_array(np.array(0.5, np.float32))),
            helper.make_node("Constant", [], ["one"], value=numpy_helper.from_array(np.array(1.0, np.float32))),
            helper.make_node("Mul", ["h", "rsqrt2"], ["s"]),
            helper.make_node("Erf", ["s"], ["e"]),
            helper.make_node("Add", ["e", "one"], ["e1"]),
            helper.make_node("Mul", ["h", "e1"], ["he"]),
            helper.make_node("Mul", ["he", "half"], ["y"]),
        ], opset)
    twice = helper.make_function(
        "local", "Twice", ["x", "w", "b"], ["y"],
        [helper.make_node("LinearGelu", ["x", "w", "b"], ["t"], domain="local"),
         helper.make_node("LinearGelu", ["t", "w", "b"], ["y"], domain="local")], opset)
    w = rng.standard_normal((8, 8)).astype(np.float32) * 0.3
    b = rng.standard_normal((8,)).astype(np.float32) * 0.1
    graph = helper.make_graph(
        [helper.make_node("LinearGelu", ["x", "W", "B"], ["h"], domain="local", name="first"),
         helper.make_node("Twice", ["h", "W", "B"], ["y"], domain="local", name="second")],
        "function_gelu_block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    model = helper.make_model(graph, opset_imports=opset, functions=[lin_gelu, twice])
    x = rng.standard_normal((3, 8)).astype(np.float32)

    def lg(a):
        h = a.astype(np.float64) @ w + b
        return 0.5 * h * (1 + erf(h / math.sqrt(2)))
    y = lg(lg(lg(x))).astype(np.float32)
    save("function_gelu_block", model, [("x", x)], [("y", y)])


def attr_ref():
    opset = [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)]
    alpha_ref = helper.make_attribute_ref("alpha", TensorProto.FLOAT) if hasattr(helper, "make_attribute_ref") else None
    leaky = helper.make_node("LeakyRelu", ["x"], ["l"])
    a = leaky.attribute.add()
    a.name = "alpha"
    a.ref_attr_name = "slope"
    a.type = onnx.AttributeProto.FLOAT
    tr = helper.make_node("Transpose", ["l"], ["y"])
    p = tr.attribute.add()
    p.name = "perm"
    p.ref_attr_name = "order"
    p.type = onnx.AttributeProto.INTS
    fn = helper.make_function("local", "LeakyT", ["x"], ["y"], [leaky, tr], opset, attributes=["slope", "order"])
    graph = helper.make_graph(
        [helper.make_node("LeakyT", ["x"], ["a"], domain="local", slope=0.2, order=[1, 0]),
         helper.make_node("LeakyT", ["a"], ["y"], domain="local", slope=0.5, order=[1, 0])],
        "function_attr_ref",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    model = helper.make_model(graph, opset_imports=opset, functions=[fn])
    x = rng.standard_normal((2, 3)).astype(np.float32)
    a1 = np.where(x > 0, x, 0.2 * x).T
    y = np.where(a1 > 0, a1, 0.5 * a1).T.astype(np.float32)
    del alpha_ref
    save("function_attr_ref", model, [("x", x)], [("y", y)])


gelu_block()
attr_ref()
