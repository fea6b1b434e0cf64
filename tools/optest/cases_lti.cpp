// Op-test table: LTIScan (S4D's linear time-invariant scan, ir/ops/lti_scan.cpp) — every optional input with
// the state in and out, the state-free form that may run as an FFT convolution (algorithm auto and forced),
// a real state, the one-token step form, and an S4D-sized perf case. Coefficients are weights (constants),
// as in a planned S4D model, with |dA| < 1 so the state stays bounded.
#include "tools/optest/optest.h"

namespace seqrun::optest {

void add_lti_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t b = pick(rng, 1, 3), h = pick(rng, 1, 19), l = pick(rng, 1, 300), n = pick(rng, 1, 40);
  const Fill decay = uniform(-0.7, 0.7);  // |dA_re + i·dA_im| < 0.99
  // 14 flops per (row, step, mode): the complex update and the readout.
  const CostFn flops = [](const std::vector<backends::TensorArg>& in,
                          const std::vector<backends::TensorArg>&) {
    return 14.0 * static_cast<double>(in[0].numel()) * static_cast<double>(in[1].shape[1]);
  };
  auto system = [&](int64_t channels, int64_t modes) {
    return std::vector<InputSpec>{
        weight(DType::f32, {channels, modes}, decay), weight(DType::f32, {channels, modes}, decay),
        weight(DType::f32, {channels, modes}),        weight(DType::f32, {channels, modes}),
        weight(DType::f32, {channels, modes}),        weight(DType::f32, {channels, modes})};
  };
  auto with = [](std::vector<InputSpec> head, std::vector<InputSpec> tail) {
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
  };
  const std::vector<InputSpec> coef = system(h, n);
  add_case(cases, "LTIScan",
           with(with({f32({b, h, l})}, coef), {weight(DType::f32, {h}), f32({b, h, n}), f32({b, h, n})}))
      .outputs(3)
      .cost_flops(flops)
      .with_note("state in and out");
  add_case(cases, "LTIScan", with(with({f32({b, h, l})}, coef), {weight(DType::f32, {h})})).cost_flops(flops);
  add_case(cases, "LTIScan", with(with({f32({b, h, l})}, coef), {weight(DType::f32, {h})}))
      .attr("algorithm", "fft")
      .cost_flops(flops)
      .with_note("fft");
  add_case(cases, "LTIScan", with(with({f32({b, h, l})}, coef), {weight(DType::f32, {h})}))
      .attr("algorithm", "recurrent")
      .cost_flops(flops)
      .with_note("recurrent");
  add_case(cases, "LTIScan",
           {f32({b, h, l}), weight(DType::f32, {h, n}, uniform(-0.99, 0.99)), absent(),
            weight(DType::f32, {h, n}), absent(), weight(DType::f32, {h, n})})
      .cost_flops(flops)
      .with_note("real state");
  add_case(cases, "LTIScan",
           with(with({f32({b, h, 1})}, coef), {weight(DType::f32, {h}), f32({b, h, n}), f32({b, h, n})}))
      .outputs(3)
      .cost_flops(flops)
      .with_note("step");
  // The S4D layer of tests/data/ssm/s4d, wider: H 256, 32 complex modes, L 4096.
  add_case(cases, "LTIScan", with(with({f32({1, 256, 4096})}, system(256, 32)), {weight(DType::f32, {256})}))
      .cost_flops(flops)
      .perf();
}

}  // namespace seqrun::optest
