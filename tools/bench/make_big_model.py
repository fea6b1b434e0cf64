#!/usr/bin/python3
"""Writes an ONNX model whose weights total about --mb megabytes, for timing model load (load_bench.sh).

The graph is y = x + w_0 + w_1 + ... + w_{n-1} with --tensors f32 weights of equal size, filled with seeded
random values (so the file has no sparse holes and no compressible runs). Its run time is irrelevant: the
benchmark times how long loading the converted .seqrun file takes.

  /usr/bin/python3 tools/bench/make_big_model.py OUT.onnx [--mb 100] [--tensors 100]
"""
import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output")
    parser.add_argument("--mb", type=float, default=100.0, help="total weight bytes, in MB (10^6)")
    parser.add_argument("--tensors", type=int, default=100, help="number of weight tensors")
    args = parser.parse_args()
    if args.mb <= 0 or args.tensors < 1:
        parser.error("--mb must be > 0 and --tensors >= 1")
    elements = max(1, int(args.mb * 1e6 / 4 / args.tensors))
    rng = np.random.default_rng(0)
    initializers, nodes = [], []
    previous = "x"
    for i in range(args.tensors):
        weight = rng.standard_normal(elements, dtype=np.float32)
        initializers.append(numpy_helper.from_array(weight, name=f"w_{i}"))
        out = "y" if i == args.tensors - 1 else f"sum_{i}"
        nodes.append(helper.make_node("Add", [previous, f"w_{i}"], [out], name=f"add_{i}"))
        previous = out
    graph = helper.make_graph(nodes, "big_weights",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [elements])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [elements])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="make_big_model")
    onnx.save(model, args.output)
    print(f"wrote {args.output}: {args.tensors} tensors x {elements} f32 = {args.tensors * elements * 4 / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
