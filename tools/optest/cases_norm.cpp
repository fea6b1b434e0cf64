// The op-test table, normalizations and resampling: Layer/RMS/Batch/Instance/Group normalization, LRN,
// MeanVarianceNormalization, Resize (nearest, linear, cubic; scales or sizes) and Upsample.
#include "tools/optest/optest.h"

namespace seqrun::optest {

namespace {

using Ints = std::vector<int64_t>;

void add_norm_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t b = pick(rng, 1, 3), s = pick(rng, 1, 20), d = pick(rng, 2, 200), c = pick(rng, 1, 8),
                h = pick(rng, 2, 12), w = pick(rng, 2, 12);
  // Inputs with a non-zero mean, as real activations have.
  const Fill act = uniform(-1.0, 3.0);
  add_case(cases, "LayerNormalization",
           {f32({b, s, d}, act), weight(DType::f32, {d}, uniform(0.5, 1.5)), weight(DType::f32, {d})});
  add_case(cases, "LayerNormalization", {f32({b, s, d}, act), weight(DType::f32, {d}, uniform(0.5, 1.5))})
      .with_note("no bias");
  add_case(cases, "LayerNormalization",
           {f32({b, s, d}, act), weight(DType::f32, {d}, uniform(0.5, 1.5)), weight(DType::f32, {d})})
      .outputs(3)
      .with_note("mean, inv_std_dev");
  add_case(
      cases, "LayerNormalization",
      {f32({b, c, h, w}, act), weight(DType::f32, {h, w}, uniform(0.5, 1.5)), weight(DType::f32, {h, w})})
      .attr("axis", 2)
      .attr("epsilon", 1e-3f);
  add_case(
      cases, "LayerNormalization",
      {f32({4, 128, 768}, act), weight(DType::f32, {768}, uniform(0.5, 1.5)), weight(DType::f32, {768})});
  add_case(cases, "LayerNormalization",
           {in(DType::f16, {8, 256}, act), weight(DType::f16, {256}, uniform(0.5, 1.5)),
            weight(DType::f16, {256})});
  add_case(
      cases, "LayerNormalization",
      {f32({16, 512, 1024}, act), weight(DType::f32, {1024}, uniform(0.5, 1.5)), weight(DType::f32, {1024})})
      .perf();

  add_case(cases, "RMSNormalization", {f32({b, s, d}, act), weight(DType::f32, {d}, uniform(0.5, 1.5))});
  add_case(cases, "RMSNormalization", {f32({b, s, 3, 8}, act), weight(DType::f32, {3, 8}, uniform(0.5, 1.5))})
      .attr("axis", -2)
      .attr("epsilon", 1e-6f);
  add_case(cases, "RMSNormalization",
           {f32({4, 128, 768}, act), weight(DType::f32, {768}, uniform(0.5, 1.5))});
  add_case(cases, "RMSNormalization", {in(DType::bf16, {8, 256}, act), weight(DType::bf16, {256})});
  add_case(cases, "RMSNormalization", {f32({16, 512, 1024}, act), weight(DType::f32, {1024})}).perf();

  add_case(cases, "BatchNormalization",
           {f32({2, c, h, w}, act), weight(DType::f32, {c}, uniform(0.5, 1.5)), weight(DType::f32, {c}),
            weight(DType::f32, {c}), weight(DType::f32, {c}, uniform(0.1, 2))});
  add_case(cases, "BatchNormalization",
           {f32({2, c, s}, act), weight(DType::f32, {c}), weight(DType::f32, {c}), weight(DType::f32, {c}),
            weight(DType::f32, {c}, uniform(0.1, 2))})
      .attr("epsilon", 1e-3f);
  add_case(cases, "InstanceNormalization",
           {f32({2, c, h, w}, act), weight(DType::f32, {c}, uniform(0.5, 1.5)), weight(DType::f32, {c})});
  add_case(cases, "GroupNormalization",
           {f32({2, 2 * c, h, w}, act), weight(DType::f32, {2 * c}, uniform(0.5, 1.5)),
            weight(DType::f32, {2 * c})})
      .attr("num_groups", 2);
  add_case(cases, "GroupNormalization",
           {f32({1, 32, 16, 16}, act), weight(DType::f32, {32}, uniform(0.5, 1.5)), weight(DType::f32, {32})})
      .attr("num_groups", 8);
  add_case(cases, "LRN", {f32({1, 2 * c + 1, h, w})}).attr("size", 3);
  add_case(cases, "LRN", {f32({2, 8, h, w}, uniform(-5, 5))})
      .attr("size", 5)
      .attr("alpha", 1e-2f)
      .attr("beta", 0.5f);
  add_case(cases, "MeanVarianceNormalization", {f32({2, c, h, w}, act)});
  add_case(cases, "MeanVarianceNormalization", {f32({b, s, d}, act)}).attr("axes", Ints{2});
}

void add_resize_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t c = pick(rng, 1, 4), h = pick(rng, 2, 12), w = pick(rng, 2, 12);
  auto scales = [](std::vector<double> v) {
    const int64_t n = static_cast<int64_t>(v.size());  // before v is moved from
    return const_f32({n}, std::move(v));
  };
  add_case(cases, "Resize", {f32({1, c, h, w}), absent(), scales({1, 1, 2, 2})}).exact().with_note("nearest");
  add_case(cases, "Resize", {f32({1, c, h, w}), absent(), scales({1, 1, 0.5, 1.5})})
      .attr("mode", "nearest")
      .attr("coordinate_transformation_mode", "asymmetric")
      .attr("nearest_mode", "floor")
      .exact()
      .with_note("nearest asymmetric floor");
  add_case(cases, "Resize", {f32({2, c, h, w}), absent(), scales({1, 1, 2, 1.5})})
      .attr("mode", "linear")
      .with_note("linear half_pixel");
  add_case(cases, "Resize", {f32({1, c, h, w}), absent(), absent(), const_i64({1, c, 2 * h + 1, w + 3})})
      .attr("mode", "linear")
      .attr("coordinate_transformation_mode", "align_corners")
      .with_note("linear align_corners sizes");
  add_case(cases, "Resize", {f32({1, c, h, w}), absent(), scales({1, 1, 2, 2})})
      .attr("mode", "cubic")
      .with_note("cubic");
  add_case(cases, "Resize", {f32({1, c, 3 * h}), absent(), scales({1, 1, 0.5})})
      .attr("mode", "linear")
      .with_note("1-D downsample");
  add_case(cases, "Upsample", {f32({1, c, h, w}), scales({1, 1, 2, 3})}).exact().with_note("nearest");
  add_case(cases, "Upsample", {f32({1, c, h, w}), scales({1, 1, 2, 2})}).attr("mode", "linear");
  add_case(cases, "Resize", {f32({1, 64, 128, 128}), absent(), scales({1, 1, 2, 2})})
      .attr("mode", "linear")
      .perf();
}

}  // namespace

void add_norm_resize_cases(std::vector<Case>& cases, Rng& rng) {
  add_norm_cases(cases, rng);
  add_resize_cases(cases, rng);
}

}  // namespace seqrun::optest
