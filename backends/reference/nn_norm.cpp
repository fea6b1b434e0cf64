// Reference kernels for normalizations: BatchNormalization (inference), InstanceNormalization,
// LayerNormalization, RMSNormalization, GroupNormalization, LRN and MeanVarianceNormalization.
//
// Statistics are two-pass (mean, then mean of squared deviations) accumulated in double, so the
// reference is more accurate than any fast path it checks. Memory-bound, single-threaded.
#include <cmath>

#include "backends/reference/kernel.h"
#include "backends/reference/nn_window.h"
#include "backends/reference/util.h"

namespace seqrun::reference {
namespace {

using namespace nn_detail;

Status require_f32(const KernelContext& ctx, int i, const char* what) {
  if (ctx.input(i).dtype() != DType::f32) {
    return ctx.error("{} must be a float tensor, got {}", what, dtype_name(ctx.input(i).dtype()));
  }
  return Status::ok();
}

// Input i must be [channels] (per-channel parameters).
Status require_channel_vector(const KernelContext& ctx, int i, const char* what, int64_t channels) {
  SEQRUN_TRY(require_f32(ctx, i, what));
  const Tensor& p = ctx.input(i);
  if (p.rank() != 1 || p.dim(0) != channels) {
    return ctx.error("{} must be [C] = [{}], got {}", what, channels, shape_to_string(p.shape()));
  }
  return Status::ok();
}

// True when `in` broadcasts to exactly `out` (numpy rules, one direction).
bool broadcasts_to(const Shape& in, const Shape& out) {
  if (in.size() > out.size()) return false;
  const size_t off = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != 1 && in[i] != out[off + i]) return false;
  }
  return true;
}

struct MeanVar {
  double mean;
  double var;
};

// Mean and (biased) variance of `count` values at base[k * stride].
MeanVar moments(const float* base, int64_t count, int64_t stride = 1) {
  if (count == 0) return {0.0, 0.0};
  double sum = 0.0;
  for (int64_t k = 0; k < count; ++k) sum += base[k * stride];
  const double mean = sum / static_cast<double>(count);
  double sq = 0.0;
  for (int64_t k = 0; k < count; ++k) sq += (base[k * stride] - mean) * (base[k * stride] - mean);
  return {mean, sq / static_cast<double>(count)};
}

Status batch_norm_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 5));
  if (ctx.node.get_int("training_mode") != 0 || ctx.node.num_outputs() > 1) {
    return ctx.error("training mode (training_mode=1 or running-stat outputs) is not supported");
  }
  SEQRUN_TRY(require_f32(ctx, 0, "X"));
  const Tensor& x = ctx.input(0);
  if (x.rank() < 2) return ctx.error("X must be [N, C, ...], got {}", shape_to_string(x.shape()));
  const int64_t channels = x.dim(1);
  const char* names[] = {"", "scale", "B", "input_mean", "input_var"};
  for (int i = 1; i < 5; ++i) SEQRUN_TRY(require_channel_vector(ctx, i, names[i], channels));
  const float eps = ctx.node.get_float("epsilon", 1e-5f);
  const float* scale = ctx.input(1).data<float>();
  const float* bias = ctx.input(2).data<float>();
  const float* mean = ctx.input(3).data<float>();
  const float* var = ctx.input(4).data<float>();
  Tensor y = Tensor::empty(DType::f32, x.shape());
  const int64_t batch = x.dim(0), plane = channels > 0 && batch > 0 ? x.numel() / (batch * channels) : 0;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t c = 0; c < channels; ++c) {
      const float mul = scale[c] / std::sqrt(var[c] + eps);
      const float* xp = x.data<float>() + (b * channels + c) * plane;
      float* yp = y.data<float>() + (b * channels + c) * plane;
      for (int64_t i = 0; i < plane; ++i) yp[i] = (xp[i] - mean[c]) * mul + bias[c];
    }
  }
  ctx.outputs = {y};
  return Status::ok();
}

Status instance_norm_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 3));
  SEQRUN_TRY(require_f32(ctx, 0, "input"));
  const Tensor& x = ctx.input(0);
  if (x.rank() < 3) return ctx.error("input must be [N, C, spatial...], got {}", shape_to_string(x.shape()));
  const int64_t batch = x.dim(0), channels = x.dim(1);
  SEQRUN_TRY(require_channel_vector(ctx, 1, "scale", channels));
  SEQRUN_TRY(require_channel_vector(ctx, 2, "B", channels));
  const double eps = ctx.node.get_float("epsilon", 1e-5f);
  Tensor y = Tensor::empty(DType::f32, x.shape());
  const int64_t plane = channels > 0 && batch > 0 ? x.numel() / (batch * channels) : 0;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t c = 0; c < channels; ++c) {
      const float* xp = x.data<float>() + (b * channels + c) * plane;
      float* yp = y.data<float>() + (b * channels + c) * plane;
      const MeanVar mv = moments(xp, plane);
      const double inv_std = 1.0 / std::sqrt(mv.var + eps);
      const float s = ctx.input(1).data<float>()[c], bias = ctx.input(2).data<float>()[c];
      for (int64_t i = 0; i < plane; ++i) yp[i] = static_cast<float>((xp[i] - mv.mean) * inv_std) * s + bias;
    }
  }
  ctx.outputs = {y};
  return Status::ok();
}

// LayerNormalization and RMSNormalization: rows = dims [0, axis), each normalized over dims
// [axis, rank); Scale and B broadcast to X.
Status axis_norm(KernelContext& ctx, bool rms) {
  SEQRUN_TRY(require_inputs(ctx, 2));
  SEQRUN_TRY(require_f32(ctx, 0, "X"));
  const Tensor& x = ctx.input(0);
  if (x.rank() == 0) return ctx.error("X must have rank >= 1");
  const int64_t axis_attr = ctx.node.get_int("axis", -1);
  if (axis_attr < -x.rank() || axis_attr >= x.rank()) {
    return ctx.error("axis {} out of range for X of rank {}", axis_attr, x.rank());
  }
  const int axis = static_cast<int>(axis_attr < 0 ? axis_attr + x.rank() : axis_attr);
  const int num_params = rms ? 1 : 2;
  std::vector<Shape> shapes = {x.shape()};
  for (int i = 1; i <= num_params; ++i) {
    if (!ctx.has_input(i)) {
      shapes.push_back({});  // absent bias: broadcast a zero scalar
      continue;
    }
    SEQRUN_TRY(require_f32(ctx, i, i == 1 ? "scale" : "B"));
    if (!broadcasts_to(ctx.input(i).shape(), x.shape())) {
      return ctx.error("{} {} does not broadcast to X {}", i == 1 ? "scale" : "B",
                       shape_to_string(ctx.input(i).shape()), shape_to_string(x.shape()));
    }
    shapes.push_back(ctx.input(i).shape());
  }
  const double eps = ctx.node.get_float("epsilon", 1e-5f);
  Shape stat_shape = x.shape();
  for (int i = axis; i < x.rank(); ++i) stat_shape[i] = 1;
  const int64_t rows = num_elements(stat_shape), row = rows > 0 ? x.numel() / rows : 0;
  std::vector<double> mean(static_cast<size_t>(rows), 0.0), inv_std(static_cast<size_t>(rows), 0.0);
  const float* xd = x.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    if (rms) {
      double sq = 0.0;
      for (int64_t k = 0; k < row; ++k) sq += static_cast<double>(xd[r * row + k]) * xd[r * row + k];
      inv_std[r] = 1.0 / std::sqrt((row > 0 ? sq / static_cast<double>(row) : 0.0) + eps);
    } else {
      const MeanVar mv = moments(xd + r * row, row);
      mean[r] = mv.mean;
      inv_std[r] = 1.0 / std::sqrt(mv.var + eps);
    }
  }
  Tensor y = Tensor::empty(DType::f32, x.shape());
  const float* scale = ctx.input(1).data<float>();
  const float* bias = (!rms && ctx.has_input(2)) ? ctx.input(2).data<float>() : nullptr;
  float* yd = y.data<float>();
  for_each_broadcast(x.shape(), shapes, [&](int64_t i, const int64_t* off) {
    const int64_t r = row > 0 ? i / row : 0;
    const float normalized = static_cast<float>((xd[i] - mean[r]) * inv_std[r]);
    yd[i] = normalized * scale[off[1]] + (bias != nullptr ? bias[off[2]] : 0.0f);
  });
  ctx.outputs = {y};
  if (ctx.node.num_outputs() > 1) {
    Tensor m = Tensor::empty(DType::f32, stat_shape), s = Tensor::empty(DType::f32, stat_shape);
    for (int64_t r = 0; r < rows; ++r) {
      m.data<float>()[r] = static_cast<float>(mean[r]);
      s.data<float>()[r] = static_cast<float>(inv_std[r]);
    }
    ctx.outputs.push_back(m);
    if (ctx.node.num_outputs() > 2) ctx.outputs.push_back(s);
  }
  return Status::ok();
}

Status layer_norm_kernel(KernelContext& ctx) {
  return axis_norm(ctx, false);
}
Status rms_norm_kernel(KernelContext& ctx) {
  return axis_norm(ctx, true);
}

Status group_norm_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 3));
  SEQRUN_TRY(require_f32(ctx, 0, "X"));
  const Tensor& x = ctx.input(0);
  if (x.rank() < 2) return ctx.error("X must be [N, C, ...], got {}", shape_to_string(x.shape()));
  const int64_t batch = x.dim(0), channels = x.dim(1);
  const int64_t groups = ctx.node.get_int("num_groups");
  if (groups <= 0 || channels % groups != 0) {
    return ctx.error("num_groups {} must be positive and divide the {} channels of X", groups, channels);
  }
  SEQRUN_TRY(require_channel_vector(ctx, 1, "scale", channels));
  SEQRUN_TRY(require_channel_vector(ctx, 2, "bias", channels));
  const double eps = ctx.node.get_float("epsilon", 1e-5f);
  const int64_t plane = channels > 0 && batch > 0 ? x.numel() / (batch * channels) : 0;
  const int64_t group_size = (channels / groups) * plane;  // contiguous: channels of a group are adjacent
  Tensor y = Tensor::empty(DType::f32, x.shape());
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t base = (b * groups + g) * group_size;
      const MeanVar mv = moments(x.data<float>() + base, group_size);
      const double inv_std = 1.0 / std::sqrt(mv.var + eps);
      for (int64_t k = 0; k < group_size; ++k) {
        const int64_t c = g * (channels / groups) + k / plane;
        const float normalized = static_cast<float>((x.data<float>()[base + k] - mv.mean) * inv_std);
        y.data<float>()[base + k] =
            normalized * ctx.input(1).data<float>()[c] + ctx.input(2).data<float>()[c];
      }
    }
  }
  ctx.outputs = {y};
  return Status::ok();
}

// y = x / (bias + alpha / size * sum of x^2 over channels [c - floor((size-1)/2), c + ceil((size-1)/2)])^beta
Status lrn_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  SEQRUN_TRY(require_f32(ctx, 0, "X"));
  const Tensor& x = ctx.input(0);
  if (x.rank() < 3) return ctx.error("X must be [N, C, spatial...], got {}", shape_to_string(x.shape()));
  const int64_t size = ctx.node.get_int("size");
  if (size <= 0) return ctx.error("size must be positive, got {}", size);
  const double alpha = ctx.node.get_float("alpha", 1e-4f), beta = ctx.node.get_float("beta", 0.75f);
  const double bias = ctx.node.get_float("bias", 1.0f);
  const int64_t batch = x.dim(0), channels = x.dim(1);
  const int64_t plane = channels > 0 && batch > 0 ? x.numel() / (batch * channels) : 0;
  const int64_t before = (size - 1) / 2, after = size - 1 - before;
  Tensor y = Tensor::empty(DType::f32, x.shape());
  const float* xd = x.data<float>();
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t c = 0; c < channels; ++c) {
      const int64_t lo = std::max<int64_t>(0, c - before), hi = std::min<int64_t>(channels - 1, c + after);
      for (int64_t i = 0; i < plane; ++i) {
        double sq = 0.0;
        for (int64_t k = lo; k <= hi; ++k)
          sq += static_cast<double>(xd[(b * channels + k) * plane + i]) * xd[(b * channels + k) * plane + i];
        const int64_t at = (b * channels + c) * plane + i;
        y.data<float>()[at] =
            static_cast<float>(xd[at] / std::pow(bias + alpha / static_cast<double>(size) * sq, beta));
      }
    }
  }
  ctx.outputs = {y};
  return Status::ok();
}

// y = (x - mean) / (sqrt(var) + 1e-9) with mean and var over `axes` (ONNX's function body).
Status mvn_kernel(KernelContext& ctx) {
  SEQRUN_TRY(require_inputs(ctx, 1));
  SEQRUN_TRY(require_f32(ctx, 0, "X"));
  const Tensor& x = ctx.input(0);
  Shape stat_shape = x.shape();
  for (int64_t a : ctx.node.get_ints("axes", {0, 2, 3})) {
    if (a < -x.rank() || a >= x.rank())
      return ctx.error("axis {} out of range for X of rank {}", a, x.rank());
    stat_shape[a < 0 ? a + x.rank() : a] = 1;
  }
  const int64_t groups = num_elements(stat_shape);
  const int64_t per_group = groups > 0 ? x.numel() / groups : 0;
  std::vector<double> sum(static_cast<size_t>(groups), 0.0), sq(static_cast<size_t>(groups), 0.0);
  const float* xd = x.data<float>();
  for_each_broadcast(x.shape(), {stat_shape}, [&](int64_t i, const int64_t* off) { sum[off[0]] += xd[i]; });
  for (double& s : sum) s /= static_cast<double>(std::max<int64_t>(per_group, 1));
  for_each_broadcast(x.shape(), {stat_shape}, [&](int64_t i, const int64_t* off) {
    sq[off[0]] += (xd[i] - sum[off[0]]) * (xd[i] - sum[off[0]]);
  });
  Tensor y = Tensor::empty(DType::f32, x.shape());
  for_each_broadcast(x.shape(), {stat_shape}, [&](int64_t i, const int64_t* off) {
    const double stddev = std::sqrt(sq[off[0]] / static_cast<double>(std::max<int64_t>(per_group, 1)));
    y.data<float>()[i] = static_cast<float>((xd[i] - sum[off[0]]) / (stddev + 1e-9));
  });
  ctx.outputs = {y};
  return Status::ok();
}

}  // namespace

void register_norm_kernels(KernelRegistry& r) {
  r.add("BatchNormalization", batch_norm_kernel, true);
  r.add("InstanceNormalization", instance_norm_kernel, true);
  r.add("LayerNormalization", layer_norm_kernel, true);
  r.add("RMSNormalization", rms_norm_kernel, true);
  r.add("GroupNormalization", group_norm_kernel, true);
  r.add("LRN", lrn_kernel, true);
  r.add("MeanVarianceNormalization", mvn_kernel, true);
}

}  // namespace seqrun::reference
