// The op-test table, convolutions and pools: Conv 1-D/2-D (strided, dilated, padded, grouped, depthwise,
// pointwise, auto_pad), ConvTranspose, DeformConv v1/v2, Max/Average/Lp/Global pools.
#include "tools/optest/optest.h"

namespace seqrun::optest {

namespace {

using Ints = std::vector<int64_t>;

// 2 * MACs: every output element reads W.numel / M weights (C/group * kernel area).
double conv_flops(const std::vector<backends::TensorArg>& in, const std::vector<backends::TensorArg>& out) {
  const backends::TensorArg& w = in[1];
  return 2.0 * static_cast<double>(out[0].numel()) * static_cast<double>(w.numel() / w.shape[0]);
}

// ConvTranspose: every input element scatters into W.numel / C outputs.
double conv_transpose_flops(const std::vector<backends::TensorArg>& in,
                            const std::vector<backends::TensorArg>&) {
  const backends::TensorArg& w = in[1];
  return 2.0 * static_cast<double>(in[0].numel()) * static_cast<double>(w.numel() / w.shape[0]);
}

void add_conv_cases(std::vector<Case>& cases, Rng& rng) {
  auto conv = [&](std::vector<InputSpec> inputs) -> Case& {
    return add_case(cases, "Conv", std::move(inputs)).cost_flops(conv_flops);
  };
  const int64_t c = pick(rng, 1, 8), m = pick(rng, 1, 12), l = pick(rng, 8, 40), h = pick(rng, 5, 20),
                w = pick(rng, 5, 20);
  // 1-D
  conv({f32({2, c, l}), weight(DType::f32, {m, c, 3}), weight(DType::f32, {m})}).attr("pads", Ints{1, 1});
  conv({f32({2, c, l}), weight(DType::f32, {m, c, 4})})
      .attr("strides", Ints{2})
      .attr("dilations", Ints{2})
      .with_note("strided dilated");
  conv({f32({1, 2 * c, l}), weight(DType::f32, {2 * c, 1, 4}), weight(DType::f32, {2 * c})})
      .attr("group", 2 * c)
      .attr("pads", Ints{3, 0})
      .with_note("depthwise causal");
  // 2-D
  conv({f32({2, c, h, w}), weight(DType::f32, {m, c, 3, 3}), weight(DType::f32, {m})})
      .attr("pads", Ints{1, 1, 1, 1});
  conv({f32({1, c, h, w}), weight(DType::f32, {m, c, 3, 2})})
      .attr("strides", Ints{2, 1})
      .attr("dilations", Ints{1, 2})
      .attr("pads", Ints{0, 1, 2, 0});
  conv({f32({1, 4 * c, h, w}), weight(DType::f32, {8, c, 3, 3}), weight(DType::f32, {8})})
      .attr("group", 4)
      .attr("pads", Ints{1, 1, 1, 1})
      .with_note("grouped");
  conv({f32({2, 3 * c, h, w}), weight(DType::f32, {3 * c, 1, 3, 3}), weight(DType::f32, {3 * c})})
      .attr("group", 3 * c)
      .attr("pads", Ints{1, 1, 1, 1})
      .with_note("depthwise");
  conv({f32({2, c, h, w}), weight(DType::f32, {m, c, 1, 1}), weight(DType::f32, {m})}).with_note("pointwise");
  conv({f32({1, c, h, w}), weight(DType::f32, {m, c, 4, 4})})
      .attr("auto_pad", "SAME_UPPER")
      .attr("strides", Ints{2, 2})
      .with_note("SAME_UPPER");
  conv({f32({1, 16, 24, 24}), weight(DType::f32, {32, 16, 3, 3}), weight(DType::f32, {32})})
      .attr("pads", Ints{1, 1, 1, 1});
  conv({in(DType::f16, {1, 8, 12, 12}), weight(DType::f16, {16, 8, 3, 3})}).attr("pads", Ints{1, 1, 1, 1});
  // Sizes of a small vision backbone, timed only.
  conv({f32({1, 64, 56, 56}), weight(DType::f32, {64, 64, 3, 3}), weight(DType::f32, {64})})
      .attr("pads", Ints{1, 1, 1, 1})
      .perf();
  conv({f32({1, 256, 56, 56}), weight(DType::f32, {256, 1, 3, 3}), weight(DType::f32, {256})})
      .attr("group", 256)
      .attr("pads", Ints{1, 1, 1, 1})
      .perf()
      .with_note("depthwise");
  conv({f32({1, 3, 224, 224}), weight(DType::f32, {64, 3, 7, 7})})
      .attr("strides", Ints{2, 2})
      .attr("pads", Ints{3, 3, 3, 3})
      .perf();
  conv({f32({4, 512, 1024}), weight(DType::f32, {512, 1, 4}), weight(DType::f32, {512})})
      .attr("group", 512)
      .attr("pads", Ints{3, 0})
      .perf()
      .with_note("depthwise causal");

  add_case(cases, "ConvTranspose",
           {f32({2, c, h, w}), weight(DType::f32, {c, m, 3, 3}), weight(DType::f32, {m})})
      .attr("strides", Ints{2, 2})
      .attr("pads", Ints{1, 1, 1, 1})
      .attr("output_padding", Ints{1, 1})
      .cost_flops(conv_transpose_flops);
  add_case(cases, "ConvTranspose", {f32({1, 4, l}), weight(DType::f32, {4, 3, 5})})
      .attr("group", 2)
      .attr("strides", Ints{3})
      .cost_flops(conv_transpose_flops);
}

void add_deform_conv_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t c = 2 * pick(rng, 1, 4), h = pick(rng, 5, 14), w = pick(rng, 5, 14), m = pick(rng, 1, 8);
  // Offsets up to +-2 pixels sample across the border; the mask is a per-tap weight in [0, 1].
  const int64_t oh = h, ow = w;  // 3x3, pad 1, stride 1
  add_case(cases, "DeformConv",
           {f32({2, c, h, w}), weight(DType::f32, {m, c, 3, 3}), f32({2, 18, oh, ow}, uniform(-2, 2)),
            weight(DType::f32, {m})})
      .attr("pads", Ints{1, 1, 1, 1})
      .cost_flops(conv_flops)
      .with_note("v1");
  add_case(cases, "DeformConv",
           {f32({1, c, h, w}), weight(DType::f32, {m, c, 3, 3}), f32({1, 36, oh, ow}, uniform(-2, 2)),
            absent(), f32({1, 18, oh, ow}, uniform(0, 1))})
      .attr("pads", Ints{1, 1, 1, 1})
      .attr("offset_group", 2)
      .cost_flops(conv_flops)
      .with_note("v2 offset_group 2");
  add_case(
      cases, "DeformConv",
      {f32({1, c, h, w}), weight(DType::f32, {4, c / 2, 2, 2}), f32({1, 8, (h - 2) / 2 + 1, (w - 2) / 2 + 1}),
       weight(DType::f32, {4}), f32({1, 4, (h - 2) / 2 + 1, (w - 2) / 2 + 1}, uniform(0, 1))})
      .attr("group", 2)
      .attr("strides", Ints{2, 2})
      .cost_flops(conv_flops)
      .with_note("v2 grouped strided");
  add_case(cases, "DeformConv",
           {f32({1, 64, 64, 64}), weight(DType::f32, {64, 64, 3, 3}), f32({1, 18, 64, 64}, uniform(-2, 2)),
            weight(DType::f32, {64}), f32({1, 9, 64, 64}, uniform(0, 1))})
      .attr("pads", Ints{1, 1, 1, 1})
      .cost_flops(conv_flops)
      .perf()
      .with_note("v2");
}

void add_pool_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t c = pick(rng, 1, 6), h = pick(rng, 4, 20), w = pick(rng, 4, 20), l = pick(rng, 5, 40);
  add_case(cases, "MaxPool", {f32({2, c, h, w})})
      .attr("kernel_shape", Ints{3, 3})
      .attr("strides", Ints{2, 2})
      .attr("pads", Ints{1, 1, 1, 1})
      .exact();
  add_case(cases, "MaxPool", {f32({1, c, h, w})})
      .attr("kernel_shape", Ints{2, 3})
      .attr("ceil_mode", 1)
      .attr("strides", Ints{2, 2})
      .outputs(2)
      .exact()
      .with_note("indices");
  add_case(cases, "MaxPool", {f32({1, c, l})})
      .attr("kernel_shape", Ints{3})
      .attr("dilations", Ints{2})
      .exact();
  add_case(cases, "AveragePool", {f32({2, c, h, w})})
      .attr("kernel_shape", Ints{3, 3})
      .attr("strides", Ints{2, 2})
      .attr("pads", Ints{1, 1, 1, 1});
  add_case(cases, "AveragePool", {f32({2, c, h, w})})
      .attr("kernel_shape", Ints{3, 3})
      .attr("pads", Ints{1, 1, 1, 1})
      .attr("count_include_pad", 1)
      .with_note("count_include_pad");
  add_case(cases, "AveragePool", {f32({1, c, l})}).attr("kernel_shape", Ints{4}).attr("strides", Ints{4});
  add_case(cases, "LpPool", {f32({1, c, h, w})}).attr("kernel_shape", Ints{2, 2}).attr("strides", Ints{2, 2});
  add_case(cases, "LpPool", {f32({1, c, l})}).attr("kernel_shape", Ints{3}).attr("p", 1);
  add_case(cases, "GlobalAveragePool", {f32({2, c, h, w})});
  add_case(cases, "GlobalMaxPool", {f32({2, c, h, w})}).exact();
  add_case(cases, "GlobalAveragePool", {f32({2, c, l})});
  add_case(cases, "MaxPool", {f32({1, 64, 112, 112})})
      .attr("kernel_shape", Ints{3, 3})
      .attr("strides", Ints{2, 2})
      .attr("pads", Ints{1, 1, 1, 1})
      .perf();
  add_case(cases, "GlobalAveragePool", {f32({8, 512, 14, 14})}).perf();
}

}  // namespace

void add_conv_pool_cases(std::vector<Case>& cases, Rng& rng) {
  add_conv_cases(cases, rng);
  add_deform_conv_cases(cases, rng);
  add_pool_cases(cases, rng);
}

}  // namespace seqrun::optest
