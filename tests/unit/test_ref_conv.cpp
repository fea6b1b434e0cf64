// nn family, convolutions and pools: Conv, ConvTranspose, DeformConv, MaxPool, AveragePool, LpPool
// and the global pools. Schemas (output shapes from attributes, errors) and reference kernels,
// checked against PyTorch/numpy case files (tests/data/nn), hand-computed values and cross-op identities.
#include <catch2/catch.hpp>

#include <cmath>

#include "nn_case_file.h"

using namespace seqrun;
using namespace nn_test;

namespace {
Tensor run_ok(OneNode& n, int i = 0) {
  auto r = n.run();
  INFO((r ? std::string() : r.status().message()));
  REQUIRE(r.is_ok());
  return (*r)[i];
}

std::string run_error(OneNode& n, bool infer = true) {
  auto r = infer ? n.run() : n.run_uninferred();
  REQUIRE_FALSE(r.is_ok());
  return r.status().message();
}

Tensor ramp(Shape shape, float scale = 0.1f, float offset = -1.0f) {
  Tensor t = Tensor::empty(DType::f32, shape);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data<float>()[i] = offset + scale * static_cast<float>((i * 7) % 23);
  return t;
}

std::string type_of(const std::string& op, Shape x, Shape w, std::map<std::string, Attribute> attrs) {
  Graph g;
  Value* xv = g.add_input("x", TensorType::from_shape(DType::f32, x));
  std::vector<Value*> ins = {xv};
  if (!w.empty()) ins.push_back(g.add_input("w", TensorType::from_shape(DType::f32, w)));
  Node* n = g.add_node(op, ins, 1, std::move(attrs));
  Status st = infer_graph_types(g);
  return st ? n->output(0)->type().to_string() : st.message();
}
}  // namespace

TEST_CASE("conv and pool: PyTorch/numpy case files") {
  const auto files = case_files({"conv_", "convt_", "deform_", "pool_"});
  REQUIRE(files.size() >= 26);
  for (const std::string& f : files) {
    DYNAMIC_SECTION(f) {
      check_case(f);
    }
  }
}

TEST_CASE("Conv: hand-computed 1-D with padding and bias") {
  // x = [1, 2, 3], w = [1, 1, 1], pads 1: [0+1+2, 1+2+3, 2+3+0] + 10
  OneNode n("Conv", {f32({1, 1, 3}, {1, 2, 3}), f32({1, 1, 3}, {1, 1, 1}), f32({1}, {10})},
            {{"pads", Attribute(std::vector<int64_t>{1, 1})}});
  Tensor y = run_ok(n);
  CHECK(y.to_f32_vector() == std::vector<float>{13, 16, 15});
}

TEST_CASE("Conv: output shapes from attributes, auto_pad and symbolic batch") {
  CHECK(type_of("Conv", {1, 3, 32, 30}, {8, 3, 3, 3}, {{"strides", Attribute(std::vector<int64_t>{2, 2})}}) ==
        "f32[1, 8, 15, 14]");
  CHECK(type_of("Conv", {1, 3, 32, 30}, {8, 3, 3, 3},
                {{"strides", Attribute(std::vector<int64_t>{2, 2})},
                 {"auto_pad", Attribute("SAME_UPPER")}}) == "f32[1, 8, 16, 15]");
  CHECK(type_of("Conv", {1, 4, 9}, {4, 1, 3},
                {{"group", Attribute(4)},
                 {"dilations", Attribute(std::vector<int64_t>{3})},
                 {"auto_pad", Attribute("VALID")}}) == "f32[1, 4, 3]");
  CHECK(type_of("ConvTranspose", {1, 2, 3, 3}, {2, 3, 3, 3},
                {{"strides", Attribute(std::vector<int64_t>{3, 2})}}) == "f32[1, 3, 9, 7]");
  CHECK(type_of("ConvTranspose", {1, 2, 3, 3}, {2, 3, 3, 3},
                {{"strides", Attribute(std::vector<int64_t>{2, 2})},
                 {"auto_pad", Attribute("SAME_LOWER")}}) == "f32[1, 3, 6, 6]");

  Graph g;
  Value* x = g.add_input("x", TensorType(DType::f16, {Dim::symbol("n"), Dim(3), Dim::symbol("h"), Dim(8)}));
  Value* w = g.add_input("w", TensorType(DType::f16, {Dim(5), Dim(3), Dim(3), Dim(3)}));
  Node* conv = g.add_node("Conv", {x, w}, 1, {{"pads", Attribute(std::vector<int64_t>{1, 1, 1, 1})}});
  REQUIRE(infer_graph_types(g).is_ok());
  CHECK(conv->output(0)->type().to_string() == "f16[n, 5, ?, 8]");
}

TEST_CASE("Conv: channel, group and kernel errors name the node") {
  // C = 4 but W expects 3 * group(1)
  OneNode ch("Conv", {ramp({1, 4, 5, 5}), ramp({2, 3, 3, 3})});
  CHECK(mentions(run_error(ch), {"Conv 'n'", "4 channels", "expects 3"}));
  CHECK(mentions(run_error(ch, false), {"Conv 'n'", "4 channels", "expects 3"}));
  // 3 output channels do not split into 2 groups
  OneNode grp("Conv", {ramp({1, 4, 5, 5}), ramp({3, 2, 3, 3})}, {{"group", Attribute(2)}});
  CHECK(mentions(run_error(grp), {"Conv 'n'", "group 2"}));
  CHECK(mentions(run_error(grp, false), {"Conv 'n'", "group 2"}));
  // 5x5 kernel on a 3x3 input without padding
  OneNode big("Conv", {ramp({1, 1, 3, 3}), ramp({1, 1, 5, 5})});
  CHECK(mentions(run_error(big), {"Conv 'n'", "kernel extent 5", "padded input size 3"}));
  CHECK(mentions(run_error(big, false), {"Conv 'n'", "kernel extent 5"}));
  OneNode pad("Conv", {ramp({1, 1, 3, 3}), ramp({1, 1, 2, 2})}, {{"auto_pad", Attribute("SAME")}});
  CHECK(mentions(run_error(pad), {"Conv 'n'", "auto_pad 'SAME'"}));
  CHECK(mentions(run_error(pad, false), {"Conv 'n'", "auto_pad 'SAME'"}));
  OneNode strides("Conv", {ramp({1, 1, 3, 3}), ramp({1, 1, 2, 2})},
                  {{"strides", Attribute(std::vector<int64_t>{1})}});
  CHECK(mentions(run_error(strides, false), {"Conv 'n'", "strides", "needs 2"}));
  OneNode bias("Conv", {ramp({1, 1, 3, 3}), ramp({2, 1, 2, 2}), ramp({3})});
  CHECK(mentions(run_error(bias), {"Conv 'n'", "bias"}));
  CHECK(mentions(run_error(bias, false), {"Conv 'n'", "bias"}));
  OneNode ks("Conv", {ramp({1, 1, 3, 3}), ramp({1, 1, 2, 2})},
             {{"kernel_shape", Attribute(std::vector<int64_t>{3, 3})}});
  CHECK(mentions(run_error(ks, false), {"Conv 'n'", "kernel_shape"}));
  OneNode ct("ConvTranspose", {ramp({1, 3, 4, 4}), ramp({2, 2, 3, 3})});
  CHECK(mentions(run_error(ct), {"ConvTranspose 'n'", "3 channels"}));
  CHECK(mentions(run_error(ct, false), {"ConvTranspose 'n'", "3 channels"}));
  OneNode ct_pads("ConvTranspose", {ramp({1, 1, 2}), ramp({1, 1, 2})},
                  {{"pads", Attribute(std::vector<int64_t>{2, 2})}});
  CHECK(mentions(run_error(ct_pads), {"ConvTranspose 'n'", "no output"}));
  CHECK(mentions(run_error(ct_pads, false), {"ConvTranspose 'n'", "no output"}));
}

TEST_CASE(
    "DeformConv: zero offsets equal Conv, integer offsets shift the input, a zero mask leaves the bias") {
  const Tensor x = ramp({1, 2, 5, 6}), w = ramp({3, 2, 3, 3}, 0.05f, -0.5f), b = f32({3}, {0.5f, -1, 2});
  std::map<std::string, Attribute> attrs = {{"pads", Attribute(std::vector<int64_t>{1, 0, 1, 2})},
                                            {"strides", Attribute(std::vector<int64_t>{1, 2})}};
  OneNode conv("Conv", {x, w, b}, attrs);
  const Tensor want = run_ok(conv);
  OneNode deform("DeformConv", {x, w, Tensor::zeros(DType::f32, {1, 18, want.dim(2), want.dim(3)}), b},
                 attrs);
  const Tensor got = run_ok(deform);
  REQUIRE(got.shape() == want.shape());
  for (int64_t i = 0; i < want.numel(); ++i) CHECK(got.get_f64(i) == Approx(want.get_f64(i)).margin(1e-5));
  CHECK(deform.out_type().to_string() == "f32[1, 3, 5, 3]");

  // No padding along H: offset_y = +1 on every tap reads x one row lower, i.e. Conv over x shifted up
  // by one row with a zero row entering at the bottom (DeformConv samples outside the image as 0).
  attrs["pads"] = Attribute(std::vector<int64_t>{0, 0, 0, 2});
  Tensor shifted = Tensor::zeros(DType::f32, x.shape());
  for (int64_t c = 0; c < 2; ++c) {
    for (int64_t r = 0; r + 1 < 5; ++r) {
      for (int64_t s = 0; s < 6; ++s) {
        shifted.data<float>()[(c * 5 + r) * 6 + s] = x.data<float>()[(c * 5 + r + 1) * 6 + s];
      }
    }
  }
  OneNode conv_shift("Conv", {shifted, w, b}, attrs);
  const Tensor want_shift = run_ok(conv_shift);
  const int64_t plane = want_shift.dim(2) * want_shift.dim(3);
  Tensor offset = Tensor::zeros(DType::f32, {1, 18, want_shift.dim(2), want_shift.dim(3)});
  for (int64_t t = 0; t < 9; ++t) {
    for (int64_t o = 0; o < plane; ++o) offset.data<float>()[(2 * t) * plane + o] = 1.0f;
  }
  OneNode v1("DeformConv", {x, w, offset, b}, attrs);
  const Tensor got_shift = run_ok(v1);
  REQUIRE(got_shift.shape() == want_shift.shape());
  for (int64_t i = 0; i < want_shift.numel(); ++i) {
    CHECK(got_shift.get_f64(i) == Approx(want_shift.get_f64(i)).margin(1e-5));
  }
  OneNode masked("DeformConv",
                 {x, w, offset, b, Tensor::zeros(DType::f32, {1, 9, want_shift.dim(2), want_shift.dim(3)})},
                 attrs);
  const Tensor only_bias = run_ok(masked);
  for (int64_t i = 0; i < only_bias.numel(); ++i) CHECK(only_bias.get_f64(i) == b.get_f64(i / plane));
}

TEST_CASE("DeformConv: offset and mask shapes are checked") {
  const Tensor x = ramp({1, 2, 4, 4}), w = ramp({2, 2, 3, 3});
  OneNode off("DeformConv", {x, w, Tensor::zeros(DType::f32, {1, 16, 2, 2})});
  CHECK(mentions(run_error(off), {"DeformConv 'n'", "offset"}));
  CHECK(mentions(run_error(off, false), {"DeformConv 'n'", "offset", "[1, 18, 2, 2]"}));
  OneNode mask("DeformConv", {x, w, Tensor::zeros(DType::f32, {1, 18, 2, 2}), Tensor(),
                              Tensor::zeros(DType::f32, {1, 9, 3, 3})});
  CHECK(mentions(run_error(mask, false), {"DeformConv 'n'", "mask", "[1, 9, 2, 2]"}));
  OneNode og("DeformConv", {ramp({1, 3, 4, 4}), ramp({2, 3, 3, 3}), Tensor::zeros(DType::f32, {1, 36, 2, 2})},
             {{"offset_group", Attribute(2)}});
  CHECK(mentions(run_error(og, false), {"DeformConv 'n'", "offset_group 2"}));
  OneNode d3("DeformConv",
             {ramp({1, 1, 4, 4, 4}), ramp({1, 1, 3, 3, 3}), Tensor::zeros(DType::f32, {1, 54, 2, 2, 2})});
  CHECK(mentions(run_error(d3, false), {"DeformConv 'n'", "2-D"}));
}

TEST_CASE("MaxPool / AveragePool: hand-computed values, indices and shapes") {
  // 1x1x2x4: [[1, 5, 2, 0], [3, 4, 8, 6]], kernel 2x2 stride 2
  const Tensor x = f32({1, 1, 2, 4}, {1, 5, 2, 0, 3, 4, 8, 6});
  std::map<std::string, Attribute> attrs = {{"kernel_shape", Attribute(std::vector<int64_t>{2, 2})},
                                            {"strides", Attribute(std::vector<int64_t>{2, 2})}};
  OneNode mp("MaxPool", {x}, attrs, 2);
  auto r = mp.run();
  REQUIRE(r.is_ok());
  CHECK((*r)[0].to_f32_vector() == std::vector<float>{5, 8});
  CHECK((*r)[1].to_i64_vector() == std::vector<int64_t>{1, 6});
  CHECK(mp.out_type(1).to_string() == "i64[1, 1, 1, 2]");
  OneNode ap("AveragePool", {x}, attrs);
  CHECK(run_ok(ap).to_f32_vector() == std::vector<float>{13.0f / 4, 16.0f / 4});

  CHECK(type_of("MaxPool", {1, 3, 7, 7}, {},
                {{"kernel_shape", Attribute(std::vector<int64_t>{3, 3})},
                 {"strides", Attribute(std::vector<int64_t>{2, 2})},
                 {"ceil_mode", Attribute(1)}}) == "f32[1, 3, 3, 3]");
  CHECK(type_of("AveragePool", {1, 3, 6, 5}, {},
                {{"kernel_shape", Attribute(std::vector<int64_t>{3, 3})},
                 {"strides", Attribute(std::vector<int64_t>{2, 2})},
                 {"pads", Attribute(std::vector<int64_t>{1, 1, 1, 1})},
                 {"ceil_mode", Attribute(1)}}) == "f32[1, 3, 4, 3]");
  CHECK(type_of("GlobalAveragePool", {2, 3, 7, 5}, {}, {}) == "f32[2, 3, 1, 1]");
}

TEST_CASE("pools: attribute errors name the node") {
  const Tensor x = ramp({1, 1, 3, 3});
  OneNode no_kernel("MaxPool", {x});
  CHECK(mentions(run_error(no_kernel), {"MaxPool 'n'", "kernel_shape"}));
  CHECK(mentions(run_error(no_kernel, false), {"MaxPool 'n'", "kernel_shape"}));
  OneNode big("AveragePool", {x}, {{"kernel_shape", Attribute(std::vector<int64_t>{4, 4})}});
  CHECK(mentions(run_error(big), {"AveragePool 'n'", "kernel extent 4"}));
  CHECK(mentions(run_error(big, false), {"AveragePool 'n'", "kernel extent 4"}));
  OneNode rank("LpPool", {x}, {{"kernel_shape", Attribute(std::vector<int64_t>{2})}});
  CHECK(mentions(run_error(rank), {"LpPool 'n'", "kernel_shape"}));
  CHECK(mentions(run_error(rank, false), {"LpPool 'n'", "kernel_shape"}));
  OneNode neg("MaxPool", {x},
              {{"kernel_shape", Attribute(std::vector<int64_t>{2, 2})},
               {"pads", Attribute(std::vector<int64_t>{0, -1, 0, 0})}});
  CHECK(mentions(run_error(neg, false), {"MaxPool 'n'", "pads"}));
  OneNode order("MaxPool", {x},
                {{"kernel_shape", Attribute(std::vector<int64_t>{2, 2})}, {"storage_order", Attribute(2)}});
  CHECK(mentions(run_error(order, false), {"MaxPool 'n'", "storage_order"}));
  OneNode flat("GlobalMaxPool", {f32({2, 2}, {1, 2, 3, 4})});
  CHECK(mentions(run_error(flat), {"GlobalMaxPool 'n'", "rank >= 3"}));
  CHECK(mentions(run_error(flat, false), {"GlobalMaxPool 'n'", "rank >= 3"}));
}
