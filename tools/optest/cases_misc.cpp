// The op-test table, the remaining ONNX families: RNN/GRU/LSTM, quantization (Quantize/Dequantize,
// integer and QLinear matmul/conv), spatial sampling (GridSample, RoiAlign, MaxUnpool, NonMaxSuppression),
// signal processing (DFT, STFT, windows, mel filter bank), Unique and Det.
#include <algorithm>

#include "tools/optest/optest.h"

namespace seqrun::optest {

namespace {

using Ints = std::vector<int64_t>;

InputSpec scalar_f32(double v) {
  return const_f32({}, {v});
}
InputSpec scalar_u8(int64_t v) {
  return weight(DType::u8, {}, ints(v, v));
}

void add_recurrent_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t t = pick(rng, 1, 12), b = pick(rng, 1, 4), d_in = pick(rng, 1, 20), h = pick(rng, 1, 16);
  const Fill w = uniform(-0.5, 0.5);
  // Y [T, dirs, B, H] and Y_h [dirs, B, H]; W [dirs, gates*H, in], R [dirs, gates*H, H], B [dirs, 2*gates*H].
  auto rnn = [&](const char* op, int64_t gates, int64_t dirs, bool lens) -> Case& {
    std::vector<InputSpec> inputs = {f32({t, b, d_in}), weight(DType::f32, {dirs, gates * h, d_in}, w),
                                     weight(DType::f32, {dirs, gates * h, h}, w),
                                     weight(DType::f32, {dirs, 2 * gates * h}, w)};
    inputs.push_back(lens ? in(DType::i32, {b}, ints(1, t)) : absent());
    inputs.push_back(f32({dirs, b, h}));
    return add_case(cases, op, std::move(inputs)).attr("hidden_size", h).outputs(2);
  };
  rnn("RNN", 1, 1, false);
  rnn("RNN", 1, 2, true).attr("direction", "bidirectional").with_note("bidirectional, lengths");
  rnn("GRU", 3, 1, false);
  rnn("GRU", 3, 1, true).attr("direction", "reverse").attr("linear_before_reset", 1).with_note("reverse lbr");
  rnn("LSTM", 4, 1, false).outputs(3);
  Case& lstm = rnn("LSTM", 4, 2, true).attr("direction", "bidirectional").outputs(3).with_note("peepholes");
  lstm.inputs.push_back(f32({2, b, h}));                     // initial_c
  lstm.inputs.push_back(weight(DType::f32, {2, 3 * h}, w));  // P
  rnn("LSTM", 4, 1, false).attr("input_forget", 1).with_note("input_forget");
}

void add_quantization_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t m = pick(rng, 1, 20), k = pick(rng, 1, 30), n = pick(rng, 1, 20);
  // Integer outputs are compared exactly.
  add_case(cases, "QuantizeLinear", {f32({m, n}, uniform(-3, 3)), scalar_f32(0.02), scalar_u8(128)});
  add_case(cases, "QuantizeLinear",
           {f32({m, n}, uniform(-3, 3)), weight(DType::f32, {n}, uniform(0.01, 0.05)),
            weight(DType::i8, {n}, ints(-10, 10))})
      .with_note("per axis");
  add_case(cases, "DequantizeLinear",
           {in(DType::u8, {m, n}, ints(0, 255)), scalar_f32(0.05), scalar_u8(100)});
  add_case(cases, "DequantizeLinear",
           {in(DType::i8, {m, n}, ints(-128, 127)), weight(DType::f32, {m}, uniform(0.01, 0.1)),
            weight(DType::i8, {m}, ints(-5, 5))})
      .attr("axis", 0)
      .with_note("per axis");
  add_case(cases, "DynamicQuantizeLinear", {f32({m, n}, uniform(-2, 3))}).outputs(3);
  add_case(cases, "MatMulInteger",
           {in(DType::u8, {m, k}, ints(0, 255)), weight(DType::u8, {k, n}, ints(0, 255)), scalar_u8(120),
            scalar_u8(130)});
  add_case(cases, "MatMulInteger",
           {in(DType::i8, {2, m, k}, ints(-128, 127)), in(DType::i8, {k, n}, ints(-128, 127))});
  add_case(cases, "QLinearMatMul",
           {in(DType::u8, {m, k}, ints(0, 255)), scalar_f32(0.02), scalar_u8(128),
            weight(DType::u8, {k, n}, ints(0, 255)), scalar_f32(0.01), scalar_u8(120), scalar_f32(0.5),
            scalar_u8(100)});
  const int64_t c = pick(rng, 1, 4), hw = pick(rng, 3, 10), oc = pick(rng, 1, 6);
  add_case(cases, "ConvInteger",
           {in(DType::u8, {1, c, hw, hw}, ints(0, 255)), weight(DType::u8, {oc, c, 3, 3}, ints(0, 255)),
            scalar_u8(128), scalar_u8(127)})
      .attr("pads", Ints{1, 1, 1, 1});
  add_case(cases, "QLinearConv",
           {in(DType::u8, {1, c, hw, hw}, ints(0, 255)), scalar_f32(0.02), scalar_u8(128),
            weight(DType::u8, {oc, c, 3, 3}, ints(0, 255)), weight(DType::f32, {oc}, uniform(0.005, 0.02)),
            scalar_u8(127), scalar_f32(0.3), scalar_u8(110), weight(DType::i32, {oc}, ints(-500, 500))})
      .attr("pads", Ints{1, 1, 1, 1})
      .with_note("per channel, bias");
}

// RoiAlign boxes [x1, y1, x2, y2] inside a `size` x `size` image.
Fill rois(int64_t size) {
  return custom([size](Tensor& t, Rng& rng) {
    std::uniform_real_distribution<float> u(0.0f, static_cast<float>(size));
    for (int64_t r = 0; r < t.dim(0); ++r) {
      float* box = t.data<float>() + r * 4;
      const float xa = u(rng), xb = u(rng), ya = u(rng), yb = u(rng);
      box[0] = std::min(xa, xb), box[1] = std::min(ya, yb), box[2] = std::max(xa, xb),
      box[3] = std::max(ya, yb);
    }
  });
}

// MaxUnpool indices: one position inside each 2x2 (stride 2) window of the [n, c, 2h, 2w] output.
Fill unpool_indices() {
  return custom([](Tensor& t, Rng& rng) {
    const int64_t h = t.dim(2), w = t.dim(3), planes = t.dim(0) * t.dim(1);
    std::uniform_int_distribution<int64_t> corner(0, 1);
    int64_t* p = t.data<int64_t>();
    for (int64_t pl = 0; pl < planes; ++pl) {
      for (int64_t i = 0; i < h; ++i) {
        for (int64_t j = 0; j < w; ++j) {
          p[(pl * h + i) * w + j] = (pl * 2 * h + 2 * i + corner(rng)) * 2 * w + 2 * j + corner(rng);
        }
      }
    }
  });
}

void add_spatial_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t n = pick(rng, 1, 2), c = pick(rng, 1, 4), h = pick(rng, 3, 12), w = pick(rng, 3, 12);
  add_case(cases, "GridSample", {f32({n, c, h, w}), f32({n, 5, 7, 2}, uniform(-1.1, 1.1))});
  add_case(cases, "GridSample", {f32({n, c, h, w}), f32({n, 4, 6, 2}, uniform(-1.1, 1.1))})
      .attr("mode", "nearest")
      .attr("padding_mode", "border")
      .exact()
      .with_note("nearest border");
  add_case(cases, "GridSample", {f32({n, c, h, w}), f32({n, 4, 6, 2}, uniform(-1.1, 1.1))})
      .attr("mode", "cubic")
      .attr("padding_mode", "reflection")
      .attr("align_corners", 1)
      .with_note("cubic reflection");
  add_case(cases, "RoiAlign",
           {f32({n, c, 10, 10}), f32({5, 4}, rois(10)), in(DType::i64, {5}, ints(0, n - 1))})
      .attr("output_height", 3)
      .attr("output_width", 2)
      .attr("sampling_ratio", 2);
  add_case(cases, "RoiAlign",
           {f32({n, c, 10, 10}), f32({3, 4}, rois(20)), in(DType::i64, {3}, ints(0, n - 1))})
      .attr("mode", "max")
      .attr("spatial_scale", 0.5f)
      .with_note("max");
  add_case(cases, "MaxUnpool", {f32({n, c, h, w}), in(DType::i64, {n, c, h, w}, unpool_indices())})
      .attr("kernel_shape", Ints{2, 2})
      .attr("strides", Ints{2, 2})
      .exact();
  // Boxes [y1, x1, y2, x2] in a 10x10 image (the kernel accepts either diagonal).
  add_case(cases, "NonMaxSuppression",
           {f32({n, 12, 4}, uniform(0, 10)), f32({n, 2, 12}, uniform(0, 1)), const_i64({4}),
            const_f32({1}, {0.3}), const_f32({1}, {0.2})});
  add_case(cases, "NonMaxSuppression",
           {f32({1, 8, 4}, uniform(1, 5)), f32({1, 1, 8}, uniform(0, 1)), const_i64({8})})
      .attr("center_point_box", 1)
      .with_note("center_point_box");
}

void add_signal_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t b = pick(rng, 1, 3), len = pick(rng, 8, 40);
  add_case(cases, "DFT", {f32({b, len, 1})});
  add_case(cases, "DFT", {f32({b, len, 2}), absent(), const_i64({1}, true)})
      .attr("inverse", 1)
      .with_note("inverse");
  add_case(cases, "DFT", {f32({b, len, 1}), const_i64({16}, true)})
      .attr("onesided", 1)
      .with_note("onesided n=16");
  add_case(cases, "STFT",
           {f32({b, 64, 1}), const_i64({8}, true), const_f32({16}, std::vector<double>(16, 0.5))});
  add_case(cases, "STFT", {f32({b, 64, 1}), const_i64({4}, true), absent(), const_i64({10}, true)})
      .attr("onesided", 0)
      .with_note("no window");
  for (const char* op : {"BlackmanWindow", "HammingWindow", "HannWindow"}) {
    add_case(cases, op, {const_i64({len}, true)});
    add_case(cases, op, {const_i64({len}, true)}).attr("periodic", 0).with_note("symmetric");
  }
  add_case(cases, "MelWeightMatrix",
           {const_i64({8}, true), const_i64({64}, true), const_i64({16000}, true), const_f32({}, {100.0}),
            const_f32({}, {6000.0})});
}

void add_misc_tensor_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t m = pick(rng, 1, 30), b = pick(rng, 1, 4);
  add_case(cases, "Unique", {f32({m}, ints(0, 6))}).outputs(4).exact();
  add_case(cases, "Unique", {f32({m, 3}, ints(0, 1))})
      .attr("axis", 0)
      .attr("sorted", 0)
      .outputs(4)
      .exact()
      .with_note("rows, unsorted");
  add_case(cases, "Det", {f32({b, 3, 3})});
  add_case(cases, "Det", {f32({5, 5})});
}

}  // namespace

void add_misc_cases(std::vector<Case>& cases, Rng& rng) {
  add_recurrent_cases(cases, rng);
  add_quantization_cases(cases, rng);
  add_spatial_cases(cases, rng);
  add_signal_cases(cases, rng);
  add_misc_tensor_cases(cases, rng);
}

}  // namespace seqrun::optest
