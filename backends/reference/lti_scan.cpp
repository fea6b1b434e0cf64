// Reference kernel: LTIScan (linear time-invariant diagonal SSM scan, complex state; semantics in
// ir/ops/lti_scan.cpp).
//
// Layout: u, y [B, H, L]; dA, dB, C (real and imaginary parts) [H, N]; Dskip [H]; h0, h [B, H, N].
// Always the recurrence, whatever `algorithm` says: one (batch, channel) row at a time, steps in order,
// the N complex modes inside a step, state and readout in double (this kernel is what the CPU kernel's
// recurrent and FFT paths are tested against). No parallel split; compute-bound (B·H·L·N complex products).
#include <cmath>
#include <string>
#include <vector>

#include "backends/reference/kernel.h"

namespace seqrun::reference {
namespace {

constexpr const char* kInputNames[10] = {"u",    "dA_re", "dA_im", "dB_re", "dB_im",
                                         "C_re", "C_im",  "Dskip", "h0_re", "h0_im"};

Status check_shape(const KernelContext& ctx, int i, const Shape& expected) {
  if (!ctx.has_input(i)) return Status::ok();
  if (ctx.input(i).dtype() != DType::f32) {
    return ctx.error("{} must be a float tensor, is {}", kInputNames[i], dtype_name(ctx.input(i).dtype()));
  }
  if (ctx.input(i).shape() != expected) {
    return ctx.error("{} must be {}, is {}", kInputNames[i], shape_to_string(expected),
                     shape_to_string(ctx.input(i).shape()));
  }
  return Status::ok();
}

// The input's floats, or null when it is absent (an absent imaginary part is zero).
const float* data_or_null(const KernelContext& ctx, int i) {
  return ctx.has_input(i) ? ctx.input(i).data<float>() : nullptr;
}

Status run_lti_scan(KernelContext& ctx) {
  for (int i : {0, 1, 3, 5}) {
    if (!ctx.has_input(i)) return ctx.error("input {} ({}) is required", i, kInputNames[i]);
  }
  const std::string algorithm = ctx.node.get_string("algorithm", "auto");
  if (algorithm != "auto" && algorithm != "recurrent" && algorithm != "fft") {
    return ctx.error("algorithm must be auto, recurrent or fft, is '{}'", algorithm);
  }
  const Tensor& u = ctx.input(0);
  if (u.rank() != 3) return ctx.error("u must be [B, H, L], is {}", shape_to_string(u.shape()));
  const int64_t B = u.dim(0), H = u.dim(1), L = u.dim(2);
  const Tensor& dA_re = ctx.input(1);
  if (dA_re.rank() != 2 || dA_re.dim(0) != H) {
    return ctx.error("dA_re must be [H={}, N], is {}", H, shape_to_string(dA_re.shape()));
  }
  const int64_t N = dA_re.dim(1);
  SEQRUN_TRY(check_shape(ctx, 0, {B, H, L}));
  for (int i = 1; i <= 6; ++i) SEQRUN_TRY(check_shape(ctx, i, {H, N}));
  SEQRUN_TRY(check_shape(ctx, 7, {H}));
  SEQRUN_TRY(check_shape(ctx, 8, {B, H, N}));
  SEQRUN_TRY(check_shape(ctx, 9, {B, H, N}));

  const float* ud = u.data<float>();
  const float* ar = data_or_null(ctx, 1);
  const float* ai = data_or_null(ctx, 2);
  const float* br = data_or_null(ctx, 3);
  const float* bi = data_or_null(ctx, 4);
  const float* cr = data_or_null(ctx, 5);
  const float* ci = data_or_null(ctx, 6);
  const float* skip = data_or_null(ctx, 7);
  const float* h0r = data_or_null(ctx, 8);
  const float* h0i = data_or_null(ctx, 9);
  Tensor y = Tensor::empty(DType::f32, {B, H, L});
  Tensor h_re = Tensor::empty(DType::f32, {B, H, N});
  Tensor h_im = Tensor::empty(DType::f32, {B, H, N});
  float* yd = y.data<float>();
  std::vector<double> sr(static_cast<size_t>(N)), si(static_cast<size_t>(N));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t row = b * H + h;
      for (int64_t n = 0; n < N; ++n) {
        sr[n] = h0r != nullptr ? h0r[row * N + n] : 0.0;
        si[n] = h0i != nullptr ? h0i[row * N + n] : 0.0;
      }
      for (int64_t t = 0; t < L; ++t) {
        const double x = ud[row * L + t];
        double acc = 0.0;
        for (int64_t n = 0; n < N; ++n) {
          const int64_t k = h * N + n;
          const double a_re = ar[k], a_im = ai != nullptr ? ai[k] : 0.0;
          const double b_re = br[k], b_im = bi != nullptr ? bi[k] : 0.0;
          const double next_re = a_re * sr[n] - a_im * si[n] + b_re * x;
          const double next_im = a_re * si[n] + a_im * sr[n] + b_im * x;
          sr[n] = next_re;
          si[n] = next_im;
          acc += cr[k] * next_re - (ci != nullptr ? ci[k] * next_im : 0.0);
        }
        yd[row * L + t] = static_cast<float>(acc + (skip != nullptr ? skip[h] * x : 0.0));
      }
      for (int64_t n = 0; n < N; ++n) {
        h_re.data<float>()[row * N + n] = static_cast<float>(sr[n]);
        h_im.data<float>()[row * N + n] = static_cast<float>(si[n]);
      }
    }
  }
  ctx.outputs.clear();
  ctx.outputs.push_back(std::move(y));
  if (ctx.node.num_outputs() > 1) ctx.outputs.push_back(std::move(h_re));
  if (ctx.node.num_outputs() > 2) ctx.outputs.push_back(std::move(h_im));
  return Status::ok();
}

}  // namespace

void register_lti_kernels(KernelRegistry& r) {
  r.add("LTIScan", run_lti_scan, /*compute_in_f32=*/true);
}

}  // namespace seqrun::reference
