// ReduceSum, ReduceMean and ReduceMax over any constant set of axes (AVX2 + OpenMP).
//
// The input is collapsed into alternating kept/reduced groups of dims (size-1 dims dropped,
// neighbours of the same kind merged). When the last group is reduced, each output element is a
// contiguous vector reduction (4 x 8 lanes) repeated over the outer reduced groups: one output per
// OpenMP iteration. When the last group is kept, each output row of `inner` contiguous values
// accumulates whole input rows (the transposed walk): one (row, chunk) per iteration, accumulating
// in the output itself. f32 accumulation; memory-bound.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "backends/cpu/avx2_math.h"
#include "backends/cpu/cpu_common.h"
#include "backends/cpu/cpu_factories.h"

namespace seqrun::backends::cpu {
namespace {

enum class ReduceOp { Sum, Mean, Max };

struct Groups {
  std::vector<int64_t> sizes, strides;  // input element strides
  int64_t count() const { return product(sizes, 0, sizes.size()); }
  // Element offset of the i-th position (row-major over the group sizes).
  int64_t offset(int64_t i) const {
    int64_t off = 0;
    for (size_t d = sizes.size(); d-- > 0;) {
      off += (i % sizes[d]) * strides[d];
      i /= sizes[d];
    }
    return off;
  }
};

// max that keeps a NaN of either operand.
inline __m256 max_nan(__m256 acc, __m256 v) {
  const __m256 m = _mm256_max_ps(v, acc);  // acc when either is NaN
  return _mm256_blendv_ps(m, v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

class ReduceKernel : public Kernel {
 public:
  ReduceKernel(ReduceOp op, Groups kept, Groups reduced, bool last_reduced)
      : op_(op), kept_(std::move(kept)), reduced_(std::move(reduced)), last_reduced_(last_reduced) {}

  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs, void*) override {
    const float* x = inputs[0].as<const float>();
    float* y = outputs[0].as<float>();
    if (last_reduced_) {
      reduce_inner(x, y);
    } else {
      reduce_outer(x, y);
    }
    return Status::ok();
  }
  std::string label() const override {
    return op_ == ReduceOp::Max   ? "avx2:reduce_max"
           : op_ == ReduceOp::Sum ? "avx2:reduce_sum"
                                  : "avx2:reduce_mean";
  }

 private:
  // Last group reduced: y[o] = reduce over the outer reduced positions r of a contiguous run.
  void reduce_inner(const float* x, float* y) const {
    const int64_t outputs = kept_.count(), run = reduced_.sizes.back();
    Groups outer_reduced = reduced_;
    outer_reduced.sizes.pop_back();
    outer_reduced.strides.pop_back();
    const int64_t repeats = outer_reduced.count();
    const float scale = op_ == ReduceOp::Mean ? 1.0f / static_cast<float>(repeats * run) : 1.0f;
    const bool is_max = op_ == ReduceOp::Max;
#pragma omp parallel for schedule(static) if (outputs * repeats * run >= kParallelMinElements)
    for (int64_t o = 0; o < outputs; ++o) {
      const float* base = x + kept_.offset(o);
      const __m256 init = _mm256_set1_ps(is_max ? -std::numeric_limits<float>::infinity() : 0.0f);
      __m256 a0 = init, a1 = init, a2 = init, a3 = init;
      for (int64_t r = 0; r < repeats; ++r) {
        const float* p = base + outer_reduced.offset(r);
        int64_t k = 0;
        for (; k + 32 <= run; k += 32) {
          const __m256 v0 = _mm256_loadu_ps(p + k), v1 = _mm256_loadu_ps(p + k + 8);
          const __m256 v2 = _mm256_loadu_ps(p + k + 16), v3 = _mm256_loadu_ps(p + k + 24);
          if (is_max) {
            a0 = max_nan(a0, v0), a1 = max_nan(a1, v1), a2 = max_nan(a2, v2), a3 = max_nan(a3, v3);
          } else {
            a0 = _mm256_add_ps(a0, v0), a1 = _mm256_add_ps(a1, v1);
            a2 = _mm256_add_ps(a2, v2), a3 = _mm256_add_ps(a3, v3);
          }
        }
        for (; k < run; k += 8) {
          const int64_t n = std::min<int64_t>(8, run - k);
          const __m256i mask = vec::tail_mask(n);
          const __m256 v = _mm256_blendv_ps(init, _mm256_maskload_ps(p + k, mask), _mm256_castsi256_ps(mask));
          a0 = is_max ? max_nan(a0, v) : _mm256_add_ps(a0, v);
        }
      }
      if (is_max) {
        const __m256 m = max_nan(max_nan(a0, a1), max_nan(a2, a3));
        alignas(32) float lanes[8];
        _mm256_store_ps(lanes, m);
        float result = lanes[0];
        for (int i = 1; i < 8; ++i) result = std::isnan(result) || lanes[i] <= result ? result : lanes[i];
        y[o] = result;
      } else {
        y[o] = vec::hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))) * scale;
      }
    }
  }

  // Last group kept (contiguous, `inner` values): y[row, :] = reduce over r of x[row + r, :].
  void reduce_outer(const float* x, float* y) const {
    const int64_t inner = kept_.sizes.back();
    Groups outer_kept = kept_;
    outer_kept.sizes.pop_back();
    outer_kept.strides.pop_back();
    const int64_t rows = outer_kept.count(), repeats = reduced_.count();
    constexpr int64_t kChunk = 1024;
    const int64_t chunks = (inner + kChunk - 1) / kChunk;
    const float scale = op_ == ReduceOp::Mean ? 1.0f / static_cast<float>(repeats) : 1.0f;
    const bool is_max = op_ == ReduceOp::Max;
#pragma omp parallel for schedule(static) if (rows * repeats * inner >= kParallelMinElements)
    for (int64_t item = 0; item < rows * chunks; ++item) {
      const int64_t row = item / chunks, begin = (item % chunks) * kChunk;
      const int64_t n = std::min(kChunk, inner - begin);
      const float* base = x + outer_kept.offset(row) + begin;
      float* out = y + row * inner + begin;
      std::copy(base, base + n, out);  // r = 0
      for (int64_t r = 1; r < repeats; ++r) {
        const float* p = base + reduced_.offset(r);
        int64_t k = 0;
        for (; k + 8 <= n; k += 8) {
          const __m256 a = _mm256_loadu_ps(out + k), v = _mm256_loadu_ps(p + k);
          _mm256_storeu_ps(out + k, is_max ? max_nan(a, v) : _mm256_add_ps(a, v));
        }
        for (; k < n; ++k) {
          if (is_max) {
            if (!std::isnan(out[k]) && (std::isnan(p[k]) || p[k] > out[k])) out[k] = p[k];
          } else {
            out[k] += p[k];
          }
        }
      }
      if (scale != 1.0f) {
        for (int64_t k = 0; k < n; ++k) out[k] *= scale;
      }
    }
  }

  ReduceOp op_;
  Groups kept_, reduced_;
  bool last_reduced_;
};

}  // namespace

std::unique_ptr<Kernel> make_reduce_kernel(const KernelInfo& info) {
  if (info.inputs.empty() || info.outputs.size() != 1) return nullptr;
  if (info.inputs[0].dtype != DType::f32 || info.outputs[0].dtype != DType::f32) return nullptr;
  const std::string& name = info.node->op();
  if (name != "ReduceSum" && name != "ReduceMean" && name != "ReduceMax") return nullptr;
  const ReduceOp op = name == "ReduceSum"    ? ReduceOp::Sum
                      : name == "ReduceMean" ? ReduceOp::Mean
                                             : ReduceOp::Max;
  const Shape& x = info.inputs[0].shape;
  const int rank = static_cast<int>(x.size());
  std::vector<int64_t> axes;
  if (info.input_present(1) && !constant_ints(info.inputs[1], axes))
    return nullptr;  // axes known at run only
  std::vector<bool> reduce(rank, false);
  if (axes.empty()) {
    if (info.node->get_int("noop_with_empty_axes", 0) != 0) return nullptr;  // identity: the reference copies
    std::fill(reduce.begin(), reduce.end(), true);
  }
  for (int64_t a : axes) {
    const int axis = normalize_axis(a, rank);
    if (axis < 0) return nullptr;
    reduce[axis] = true;
  }
  // Collapse into kept/reduced groups with their input strides.
  std::vector<int64_t> sizes, strides;
  std::vector<bool> kinds;
  int64_t stride = 1;
  std::vector<int64_t> x_strides(rank);
  for (int d = rank - 1; d >= 0; --d) {
    x_strides[d] = stride;
    stride *= x[d];
  }
  for (int d = 0; d < rank; ++d) {
    if (x[d] == 0) return nullptr;  // empty input: the reference handles identities
    if (x[d] == 1) continue;
    if (!kinds.empty() && kinds.back() == reduce[d]) {
      sizes.back() *= x[d];
      strides.back() = x_strides[d];
    } else {
      sizes.push_back(x[d]);
      strides.push_back(x_strides[d]);
      kinds.push_back(reduce[d]);
    }
  }
  Groups kept, reduced;
  for (size_t g = 0; g < sizes.size(); ++g) {
    Groups& target = kinds[g] ? reduced : kept;
    target.sizes.push_back(sizes[g]);
    target.strides.push_back(strides[g]);
  }
  if (reduced.sizes.empty()) {  // only size-1 dims reduced: a copy, as a one-element reduction
    reduced.sizes.push_back(1);
    reduced.strides.push_back(1);
    kinds.push_back(true);
  }
  if (info.outputs[0].numel() != kept.count()) return nullptr;
  const bool last_reduced = kinds.back();
  if (!last_reduced && kept.sizes.empty()) return nullptr;
  return std::make_unique<ReduceKernel>(op, std::move(kept), std::move(reduced), last_reduced);
}

}  // namespace seqrun::backends::cpu
