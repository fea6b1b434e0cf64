// The op-test table, data movement and indexing: shape queries, Reshape family, Transpose, Slice, Concat,
// Split, Expand, Tile, Pad, depth/space, Gather*/Scatter*, Compress, NonZero, OneHot, Range, Trilu, ...
// Every op here moves or selects values, so each case must match the reference bit for bit.
#include <algorithm>
#include <numeric>

#include "tools/optest/optest.h"

namespace seqrun::optest {

namespace {

using Ints = std::vector<int64_t>;

// i64 indices [k, n] for axis 0 of a [rows, n] tensor, distinct within each column (scatter without
// duplicates has one right answer).
Fill distinct_rows(int64_t rows) {
  return custom([rows](Tensor& t, Rng& rng) {
    const int64_t k = t.dim(0), n = t.dim(1);
    std::vector<int64_t> perm(rows);
    for (int64_t j = 0; j < n; ++j) {
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), rng);
      for (int64_t i = 0; i < k; ++i) t.data<int64_t>()[i * n + j] = perm[i];
    }
  });
}

// Half zeros (NonZero, Compress-like inputs).
Fill sparse() {
  return custom([](Tensor& t, Rng& rng) {
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (int64_t i = 0; i < t.numel(); ++i) {
      float v = u(rng);
      t.data<float>()[i] = v < 0.0f ? 0.0f : v;
    }
  });
}

void add_reshape_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t a = pick(rng, 1, 5), b = pick(rng, 1, 12), c = pick(rng, 1, 30), d = pick(rng, 1, 8);
  auto exact_case = [&](std::string op, std::vector<InputSpec> inputs) -> Case& {
    return add_case(cases, std::move(op), std::move(inputs)).exact();
  };
  exact_case("Shape", {f32({a, b, c})});
  exact_case("Shape", {f32({a, b, c, d})}).attr("start", 1).attr("end", -1);
  exact_case("Size", {f32({a, b, c})});
  exact_case("Reshape", {f32({a, b, c}), const_i64({0, -1})});
  exact_case("Reshape", {f32({a, b, c}), const_i64({c, 1, -1})});
  exact_case("Flatten", {f32({a, b, c, d})}).attr("axis", 2);
  exact_case("Squeeze", {f32({a, 1, c, 1}), const_i64({1, -1})});
  exact_case("Squeeze", {f32({1, b, 1})}).with_note("all");
  exact_case("Unsqueeze", {f32({a, b}), const_i64({0, 3})});
  exact_case("Transpose", {f32({a, b, c, d})}).attr("perm", Ints{0, 2, 1, 3});
  exact_case("Transpose", {f32({b, c})});
  exact_case("Transpose", {f32({a, b, c})}).attr("perm", Ints{2, 0, 1});
  exact_case("Transpose", {in(DType::f16, {b, c, d})}).attr("perm", Ints{1, 2, 0});
  exact_case("Transpose", {f32({1024, 4096})}).perf();
  exact_case("Transpose", {f32({16, 128, 12, 64})}).attr("perm", Ints{0, 2, 1, 3}).perf().with_note("heads");
  exact_case("Slice", {f32({a, b, c}), const_i64({0, 1}), const_i64({b, -1}), const_i64({1, 2})});
  exact_case("Slice", {f32({a, b, c}), const_i64({-1}), const_i64({-1000}), const_i64({2}), const_i64({-2})})
      .with_note("negative step");
  exact_case("Slice",
             {f32({a, b, c}), const_i64({1, 0}), const_i64({100, 100}), absent(), const_i64({1, 3})});
  exact_case("Concat", {f32({a, b, c}), f32({a, 3, c}), f32({a, 1, c})}).attr("axis", 1);
  exact_case("Concat", {f32({a, b, c}), f32({a, b, d})}).attr("axis", -1);
  exact_case("Concat", {in(DType::i64, {b}, ints(-9, 9)), in(DType::i64, {c}, ints(-9, 9))}).attr("axis", 0);
  exact_case("Concat", {f32({8, 128, 64}), f32({8, 1, 64})}).attr("axis", 1).perf().with_note("kv append");
  exact_case("Split", {f32({a, b + c + 1, d}), const_i64({b, c, 1})}).attr("axis", 1).outputs(3);
  exact_case("Split", {f32({a, b, 3 * c + 1})}).attr("axis", -1).attr("num_outputs", 3).outputs(3);
  exact_case("Expand", {f32({a, 1, c}), const_i64({2, a, b, c})});
  exact_case("Expand", {f32({b, 1}), const_i64({1, d})});
  exact_case("Tile", {f32({a, b}), const_i64({2, 3})});
  exact_case("Pad", {f32({a, b, c}), const_i64({0, 1, 2, 0, 2, 1})});
  exact_case("Pad", {f32({a, b, c}), const_i64({1, -1}), const_f32({}, {0.5}), const_i64({2})})
      .with_note("constant, axes, crop");
  for (const char* mode : {"reflect", "edge", "wrap"}) {
    exact_case("Pad", {f32({a, b + 2, c + 2}), const_i64({0, 2, 1, 0, 1, 2})})
        .attr("mode", mode)
        .with_note(mode);
  }
}

void add_index_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t v = pick(rng, 2, 50), d = pick(rng, 1, 40), b = pick(rng, 1, 4), s = pick(rng, 1, 12);
  auto exact_case = [&](std::string op, std::vector<InputSpec> inputs) -> Case& {
    return add_case(cases, std::move(op), std::move(inputs)).exact();
  };
  exact_case("DepthToSpace", {f32({b, 8, 3, 5})}).attr("blocksize", 2);
  exact_case("DepthToSpace", {f32({b, 8, 3, 5})}).attr("blocksize", 2).attr("mode", "CRD");
  exact_case("SpaceToDepth", {f32({b, 3, 4, 6})}).attr("blocksize", 2);
  exact_case("Gather", {weight(DType::f32, {v, d}), in(DType::i64, {b, s}, ints(-v, v - 1))})
      .with_note("embedding");
  exact_case("Gather", {f32({b, v, d}), in(DType::i32, {s}, ints(0, v - 1))}).attr("axis", 1);
  exact_case("Gather", {f32({b, v, d}), in(DType::i64, {}, ints(0, d - 1))})
      .attr("axis", -1)
      .with_note("scalar");
  exact_case("Gather", {weight(DType::f32, {32000, 512}), in(DType::i64, {8, 128}, ints(0, 31999))})
      .perf()
      .with_note("embedding");
  exact_case("GatherElements", {f32({v, d}), in(DType::i64, {s, d}, ints(-v, v - 1))});
  exact_case("GatherElements", {f32({b, v}), in(DType::i64, {b, s}, ints(0, v - 1))}).attr("axis", 1);
  exact_case("GatherND", {f32({4, 5, d}), in(DType::i64, {s, 2}, ints(0, 3))});
  exact_case("GatherND", {f32({b, 6, d}), in(DType::i64, {b, s, 1}, ints(0, 5))}).attr("batch_dims", 1);
  exact_case("ScatterND", {f32({v, d}), in(DType::i64, {2, 1}, values({1, 0})), f32({2, d})});
  add_case(cases, "ScatterND", {f32({v, d}), in(DType::i64, {s, 1}, ints(0, v - 1)), f32({s, d})})
      .attr("reduction", "add")
      .with_note("add");
  exact_case("ScatterElements",
             {f32({v, d}), in(DType::i64, {std::min(v, s), d}, distinct_rows(v)), f32({std::min(v, s), d})});
  exact_case("ScatterElements", {f32({v, d}), in(DType::i64, {s, d}, ints(0, v - 1)), f32({s, d})})
      .attr("reduction", "max")
      .with_note("max");
  exact_case("Compress", {f32({v, d}), in(DType::boolean, {v}, bools())}).attr("axis", 0);
  exact_case("Compress", {f32({b, d}), in(DType::boolean, {b * d}, bools())}).with_note("flattened");
  exact_case("NonZero", {f32({b, s, d}, sparse())});
  exact_case("NonZero", {in(DType::boolean, {v}, bools())});
  exact_case("OneHot",
             {in(DType::i64, {b, s}, ints(0, 9)), const_i64({10}, true), const_f32({2}, {0.0, 1.0})});
  exact_case("OneHot", {in(DType::i32, {s}, ints(-5, 4)), const_i64({5}, true), const_f32({2}, {-1.0, 3.0})})
      .attr("axis", 0);
  exact_case("Range", {const_f32({}, {-1.5}), const_f32({}, {4.0}), const_f32({}, {0.25})});
  exact_case("Range", {const_i64({10}, true), const_i64({-3}, true), const_i64({-2}, true)});
  exact_case("ConstantOfShape", {const_i64({b, s})}).attr("value", Tensor::from_vector<float>({1}, {1.5f}));
  exact_case("ConstantOfShape", {const_i64({s})}).attr("value", Tensor::from_vector<int64_t>({1}, {7}));
  exact_case("EyeLike", {f32({s, d})}).attr("k", 1);
  exact_case("Trilu", {f32({b, s, d})});
  exact_case("Trilu", {f32({b, s, d}), const_i64({-1}, true)}).attr("upper", 0).with_note("lower k=-1");
  exact_case("ReverseSequence", {f32({s, b, d}), in(DType::i64, {b}, ints(1, s))});
  exact_case("ReverseSequence", {f32({b, s, d}), in(DType::i64, {b}, ints(0, s))})
      .attr("batch_axis", 0)
      .attr("time_axis", 1);
}

}  // namespace

void add_shape_cases(std::vector<Case>& cases, Rng& rng) {
  add_reshape_cases(cases, rng);
  add_index_cases(cases, rng);
}

}  // namespace seqrun::optest
