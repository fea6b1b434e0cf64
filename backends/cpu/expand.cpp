// Expand: broadcast copy of x to the planned output shape (any element size), as memcpy of contiguous runs.
//
// Layout: the output is collapsed first (size-1 dims dropped; neighbours merged where x is contiguous across
// both or broadcast along both), so the innermost collapsed dim is either contiguous in x (a memcpy per
// output row) or broadcast (one element repeated: a typed fill). The kernel never reads the shape input: the
// plan's output shape is concrete, and the factory checks that x broadcasts to it (and, when the shape is a
// constant, that it is what the shape says), declining otherwise so the reference reports the error.
// Parallel split: output rows, statically over the threads, once the output is large enough to pay for the
// fork. Bound: memory (one write of the output, reads of x mostly from cache).
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "backends/cpu/cpu_common.h"
#include "backends/cpu/cpu_factories.h"

namespace seqrun::backends::cpu {
namespace {

constexpr int64_t kParallelMinBytes = 1 << 18;

template <typename T>
void fill_typed(char* dst, const char* src, int64_t n) {
  T value;
  std::memcpy(&value, src, sizeof(T));
  T* out = reinterpret_cast<T*>(dst);
  for (int64_t i = 0; i < n; ++i) out[i] = value;
}

// dst[0..n) = src[0] repeated, elements of `esz` bytes.
void fill_elements(char* dst, const char* src, int64_t n, int64_t esz) {
  switch (esz) {
    case 8:
      return fill_typed<uint64_t>(dst, src, n);
    case 4:
      return fill_typed<uint32_t>(dst, src, n);
    case 2:
      return fill_typed<uint16_t>(dst, src, n);
    case 1:
      return std::memset(dst, static_cast<unsigned char>(*src), static_cast<size_t>(n)), void();
    default:
      for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * esz, src, static_cast<size_t>(esz));
  }
}

class ExpandKernel : public Kernel {
 public:
  // out: the output shape; strides: x's element stride per output dim (0 where x broadcasts).
  ExpandKernel(int64_t element_bytes, const Shape& out, const std::vector<int64_t>& strides, int threads)
      : esz_(element_bytes), total_(num_elements(out)), threads_(std::max(1, threads)) {
    for (size_t d = 0; d < out.size(); ++d) {
      if (out[d] == 1) continue;
      // x's stride across the merged dims is the inner one's; contiguous (s_prev = s · n) or broadcast (0,
      // 0).
      if (!dims_.empty() && strides_.back() == strides[d] * out[d]) {
        dims_.back() *= out[d];
        strides_.back() = strides[d];
      } else {
        dims_.push_back(out[d]);
        strides_.push_back(strides[d]);
      }
    }
    if (dims_.empty()) {
      dims_.push_back(1);
      strides_.push_back(1);
    }
  }

  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs, void*) override {
    if (total_ == 0) return Status::ok();
    const char* src = static_cast<const char*>(inputs[0].data);
    char* dst = static_cast<char*>(outputs[0].data);
    const int outer = static_cast<int>(dims_.size()) - 1;
    const int64_t run = dims_.back(), run_bytes = run * esz_;
    const bool contiguous = strides_.back() == 1;
    const int64_t rows = total_ / run;
    const int threads = std::max(1, std::min(threads_, omp_get_max_threads()));
    const bool parallel = threads > 1 && rows > 1 && total_ * esz_ >= kParallelMinBytes;
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel)
    for (int64_t row = 0; row < rows; ++row) {
      int64_t src_offset = 0, rest = row;
      for (int d = outer - 1; d >= 0; --d) {
        src_offset += (rest % dims_[d]) * strides_[d];
        rest /= dims_[d];
      }
      const char* s = src + src_offset * esz_;
      char* o = dst + row * run_bytes;
      if (contiguous) {
        std::memcpy(o, s, static_cast<size_t>(run_bytes));
      } else {
        fill_elements(o, s, run, esz_);
      }
    }
    return Status::ok();
  }

  std::string label() const override {
    return "cpu:expand";
  }

 private:
  int64_t esz_;
  int64_t total_;
  int threads_;
  std::vector<int64_t> dims_, strides_;  // collapsed output dims and x's element strides
};

}  // namespace

std::unique_ptr<Kernel> make_expand_kernel(const KernelInfo& info) {
  if (info.inputs.empty() || info.outputs.size() != 1) return nullptr;
  const TensorArg& x = info.inputs[0];
  const Shape& out = info.outputs[0].shape;
  if (x.dtype == DType::undefined || info.outputs[0].dtype != x.dtype ||
      x.rank() > static_cast<int>(out.size()))
    return nullptr;
  const size_t lead = out.size() - x.shape.size();
  std::vector<int64_t> strides(out.size(), 0);
  int64_t stride = 1;
  for (size_t i = x.shape.size(); i-- > 0;) {
    const int64_t dim = x.shape[i], target = out[lead + i];
    if (dim != 1 && dim != target) return nullptr;
    strides[lead + i] = dim == 1 ? 0 : stride;
    stride *= dim;
  }
  // A constant shape must give this output: broadcast(x, shape) == out (bidirectional, as the schema says).
  std::vector<int64_t> shape;
  if (info.input_present(1) && constant_ints(info.inputs[1], shape)) {
    if (shape.size() > out.size()) return nullptr;
    const size_t pad = out.size() - shape.size();
    for (size_t d = 0; d < out.size(); ++d) {
      const int64_t want = d < pad ? 1 : shape[d - pad];
      const int64_t have = d < lead ? 1 : x.shape[d - lead];
      int64_t expected;
      if (have == want || want == 1) {
        expected = have;
      } else if (have == 1 && want >= 0) {
        expected = want;
      } else {
        return nullptr;
      }
      if (expected != out[d]) return nullptr;
    }
  }
  return std::make_unique<ExpandKernel>(static_cast<int64_t>(dtype_size(x.dtype)), out, strides,
                                        info.threads);
}

}  // namespace seqrun::backends::cpu
