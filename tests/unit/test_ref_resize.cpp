// nn family, resampling: Resize (opset 13+ form) and Upsample (opset 9). Schemas (output shapes from
// constant scales/sizes, errors) and reference kernels, checked against PyTorch/numpy case files
// (tests/data/nn) and hand-computed values.
#include <catch2/catch.hpp>

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
}  // namespace

TEST_CASE("resize: PyTorch/numpy case files") {
  const auto files = case_files({"resize_", "upsample_"});
  REQUIRE(files.size() >= 18);
  for (const std::string& f : files) {
    DYNAMIC_SECTION(f) {
      check_case(f);
    }
  }
}

TEST_CASE("Resize: hand-computed nearest and linear, shapes from constant inputs") {
  const Tensor x = f32({1, 1, 1, 2}, {1, 3});
  // nearest, asymmetric, floor, x2 along W: [1, 1, 3, 3]
  OneNode nn(
      "Resize", {x, Tensor(), f32({4}, {1, 1, 1, 2})},
      {{"coordinate_transformation_mode", Attribute("asymmetric")}, {"nearest_mode", Attribute("floor")}}, 1,
      {2});
  CHECK(run_ok(nn).to_f32_vector() == std::vector<float>{1, 1, 3, 3});
  CHECK(nn.out_type().to_string() == "f32[1, 1, 1, 4]");
  // linear, align_corners, to width 3: [1, 2, 3]
  OneNode lin("Resize", {x, Tensor(), Tensor(), i64({4}, {1, 1, 1, 3})},
              {{"mode", Attribute("linear")}, {"coordinate_transformation_mode", Attribute("align_corners")}},
              1, {3});
  CHECK(run_ok(lin).to_f32_vector() == std::vector<float>{1, 2, 3});
  CHECK(lin.out_type().to_string() == "f32[1, 1, 1, 3]");
  // half_pixel linear x2: source coords -0.25, 0.25, 0.75, 1.25 -> 1, 1.5, 2.5, 3 (edges clamp)
  OneNode half("Resize", {x, Tensor(), f32({2}, {1, 2})},
               {{"mode", Attribute("linear")}, {"axes", Attribute(std::vector<int64_t>{2, 3})}}, 1, {2});
  CHECK(run_ok(half).to_f32_vector() == std::vector<float>{1, 1.5f, 2.5f, 3});
  // an empty scales tensor counts as absent (ONNX exporters write one next to sizes)
  OneNode empty("Resize", {x, Tensor(), f32({0}, {}), i64({4}, {1, 1, 2, 2})}, {}, 1, {2, 3});
  CHECK(run_ok(empty).to_f32_vector() == std::vector<float>{1, 3, 1, 3});
  // nearest on integers copies exactly
  OneNode ints("Resize", {i64({1, 2}, {7, -9}), Tensor(), f32({2}, {1, 1.5f})},
               {{"coordinate_transformation_mode", Attribute("asymmetric")}}, 1, {2});
  const Tensor yi = run_ok(ints);
  CHECK(yi.dtype() == DType::i64);
  CHECK(yi.to_i64_vector() == std::vector<int64_t>{7, -9, -9});  // 0, 0.67 -> 1, 1.33 -> 1
}

TEST_CASE("Resize and Upsample: errors name the node") {
  const Tensor x = f32({1, 1, 2, 2}, {1, 2, 3, 4});
  OneNode both("Resize", {x, Tensor(), f32({4}, {1, 1, 2, 2}), i64({4}, {1, 1, 4, 4})}, {}, 1, {2, 3});
  CHECK(mentions(run_error(both), {"Resize 'n'", "exactly one of scales and sizes"}));
  CHECK(mentions(run_error(both, false), {"Resize 'n'", "exactly one of scales and sizes"}));
  OneNode none("Resize", {x}, {});
  CHECK(mentions(run_error(none, false), {"Resize 'n'", "exactly one"}));
  OneNode anti("Resize", {x, Tensor(), f32({4}, {1, 1, 2, 2})}, {{"antialias", Attribute(1)}}, 1, {2});
  CHECK(mentions(run_error(anti, false), {"Resize 'n'", "antialias"}));
  OneNode mode("Resize", {x, Tensor(), f32({4}, {1, 1, 2, 2})}, {{"mode", Attribute("bilinear")}}, 1, {2});
  CHECK(mentions(run_error(mode), {"Resize 'n'", "mode 'bilinear'"}));
  CHECK(mentions(run_error(mode, false), {"Resize 'n'", "mode 'bilinear'"}));
  OneNode ctm("Resize", {x, Tensor(), f32({4}, {1, 1, 2, 2})},
              {{"coordinate_transformation_mode", Attribute("center")}}, 1, {2});
  CHECK(mentions(run_error(ctm, false), {"Resize 'n'", "coordinate_transformation_mode 'center'"}));
  OneNode count("Resize", {x, Tensor(), f32({2}, {2, 2})}, {}, 1, {2});
  CHECK(mentions(run_error(count), {"Resize 'n'", "scales has 2 values"}));
  CHECK(mentions(run_error(count, false), {"Resize 'n'", "scales", "4 values"}));
  OneNode neg("Resize", {x, Tensor(), f32({4}, {1, 1, -2, 2})}, {}, 1, {2});
  CHECK(mentions(run_error(neg, false), {"Resize 'n'", "positive"}));
  OneNode huge("Resize", {x, Tensor(), f32({4}, {1, 1, 1e30f, 1e30f})}, {}, 1, {2});
  CHECK(mentions(run_error(huge, false), {"Resize 'n'"}));
  OneNode axes("Resize", {x, Tensor(), f32({1}, {2})}, {{"axes", Attribute(std::vector<int64_t>{4})}}, 1,
               {2});
  CHECK(mentions(run_error(axes, false), {"Resize 'n'", "axis 4"}));
  OneNode linear_int("Resize", {i64({1, 2}, {1, 2}), Tensor(), f32({2}, {1, 2})},
                     {{"mode", Attribute("linear")}}, 1, {2});
  CHECK(mentions(run_error(linear_int, false), {"Resize 'n'", "float"}));
  OneNode up("Upsample", {x, f32({3}, {1, 2, 2})}, {}, 1, {1});
  CHECK(mentions(run_error(up), {"Upsample 'n'", "scales has 3 values"}));
  CHECK(mentions(run_error(up, false), {"Upsample 'n'", "scales"}));
}
