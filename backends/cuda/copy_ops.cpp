// CUDA kernels for Slice (constant starts/ends/axes/steps), Split and Concat: each one or more strided copies
// (device code in copy.cu), any element size of 1, 2, 4 or 8 bytes.
//
// The factories need static shapes and constant slice parameters (what a specialized plan has) and decline
// anything else, so the CPU computes it or reports the error with the reference's message.
#include <algorithm>

#include "backends/cuda/cuda_context.h"

namespace seqrun::backends::cuda {

namespace {

bool word_size(size_t bytes) {
  return bytes == 1 || bytes == 2 || bytes == 4 || bytes == 8;
}

// Row-major element strides of `shape`.
std::vector<int64_t> strides_of(const Shape& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (int d = static_cast<int>(shape.size()) - 2; d >= 0; --d) s[d] = s[d + 1] * shape[d + 1];
  return s;
}

// One strided copy per (input, output) pair, pointers filled at run time.
struct CopyPlan {
  int input = 0;
  int output = 0;
  StridedCopyParams params;
};

class StridedCopyKernel final : public CudaKernel {
 public:
  StridedCopyKernel(CudaContext* ctx, const Node* node, std::vector<CopyPlan> copies, std::string label)
      : CudaKernel(ctx, node, std::move(label)), copies_(std::move(copies)) {}
  Status run(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out, void*) override {
    for (const CopyPlan& c : copies_) {
      StridedCopyParams p = c.params;
      p.src = in[c.input].data;
      p.dst = out[c.output].data;
      SEQRUN_TRY(launched(launch_strided_copy(p, ctx_->stream())));
    }
    return Status::ok();
  }

 private:
  std::vector<CopyPlan> copies_;
};

// A copy of `dims` elements from a view of `in_shape` (element strides in_strides, starting at in_offset)
// into a view of `out_shape`; false when the rank is too large.
bool make_copy(const Shape& dims, const std::vector<int64_t>& src_strides, int64_t src_offset,
               const std::vector<int64_t>& dst_strides, int64_t dst_offset, size_t elem, CopyPlan* plan) {
  const int rank = static_cast<int>(dims.size());
  StridedCopyParams& p = plan->params;
  p.elem_size = static_cast<int32_t>(elem);
  p.rank = std::max(rank, 1);
  if (rank > kMaxRank) return false;
  p.n = 1;
  for (int d = 0; d < rank; ++d) {
    p.dims[d] = dims[d];
    p.src_strides[d] = src_strides[d];
    p.dst_strides[d] = dst_strides[d];
    p.n *= dims[d];
  }
  if (rank == 0) {  // a scalar: one element
    p.dims[0] = 1;
    p.src_strides[0] = 0;
    p.dst_strides[0] = 0;
  }
  p.src_offset = src_offset;
  p.dst_offset = dst_offset;
  return true;
}

// The constant integer values of input i, or nullopt when absent (or not a constant).
std::optional<std::vector<int64_t>> constant_input(const KernelInfo& info, int i) {
  if (!info.input_present(i)) return std::nullopt;
  const Value* v = info.node->input(i);
  if (v == nullptr || !v->is_constant()) return std::nullopt;
  const DType dt = v->constant().dtype();
  if (dt != DType::i64 && dt != DType::i32) return std::nullopt;
  return v->constant().to_i64_vector();
}

// Slice (ONNX 13): data, starts, ends, axes?, steps?, all parameters constant.
std::unique_ptr<Kernel> make_slice(const KernelInfo& info, CudaContext* ctx) {
  if (info.inputs.size() < 3 || info.outputs.size() != 1) return nullptr;
  const TensorArg& x = info.inputs[0];
  const TensorArg& y = info.outputs[0];
  const size_t elem = dtype_size(x.dtype);
  if (!word_size(elem) || y.dtype != x.dtype || x.rank() < 1 || y.rank() != x.rank()) return nullptr;
  const std::optional<std::vector<int64_t>> starts = constant_input(info, 1), ends = constant_input(info, 2);
  if (!starts || !ends || starts->size() != ends->size()) return nullptr;
  std::vector<int64_t> axes, steps(starts->size(), 1);
  if (info.input_present(3)) {
    const std::optional<std::vector<int64_t>> a = constant_input(info, 3);
    if (!a || a->size() != starts->size()) return nullptr;
    axes = *a;
  } else {
    for (size_t i = 0; i < starts->size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (info.input_present(4)) {
    const std::optional<std::vector<int64_t>> s = constant_input(info, 4);
    if (!s || s->size() != starts->size()) return nullptr;
    steps = *s;
  }
  const int rank = x.rank();
  const std::vector<int64_t> in_strides = strides_of(x.shape);
  std::vector<int64_t> src_strides = in_strides;
  std::vector<bool> seen(rank, false);
  int64_t offset = 0;
  Shape dims = x.shape;
  for (size_t i = 0; i < axes.size(); ++i) {
    const std::optional<int> axis = normalize_axis(axes[i], rank);
    if (!axis || seen[*axis] || steps[i] == 0) return nullptr;
    seen[*axis] = true;
    const int64_t dim = x.shape[*axis], step = steps[i];
    int64_t start = (*starts)[i], end = (*ends)[i];
    if (start < 0) start += dim;
    if (end < 0) end += dim;
    int64_t count = 0;
    if (step > 0) {
      start = std::clamp<int64_t>(start, 0, dim);
      end = std::clamp<int64_t>(end, 0, dim);
      count = end > start ? (end - start + step - 1) / step : 0;
    } else {
      start = std::clamp<int64_t>(start, 0, dim - 1);
      end = std::clamp<int64_t>(end, -1, dim - 1);
      count = start > end ? (start - end + (-step) - 1) / (-step) : 0;
    }
    dims[*axis] = count;
    if (count > 0) offset += start * in_strides[*axis];
    src_strides[*axis] = in_strides[*axis] * step;
  }
  if (dims != y.shape) return nullptr;
  std::vector<CopyPlan> copies(1);
  if (!make_copy(dims, src_strides, offset, strides_of(y.shape), 0, elem, &copies[0])) return nullptr;
  return std::make_unique<StridedCopyKernel>(ctx, info.node, std::move(copies), "cuda:slice");
}

// Split: every output a slice of the input along `axis` (output shapes give the sizes).
std::unique_ptr<Kernel> make_split(const KernelInfo& info, CudaContext* ctx) {
  if (info.inputs.empty() || info.outputs.empty()) return nullptr;
  const TensorArg& x = info.inputs[0];
  const size_t elem = dtype_size(x.dtype);
  if (!word_size(elem) || x.rank() < 1) return nullptr;
  const std::optional<int> axis = normalize_axis(info.node->get_int("axis", 0), x.rank());
  if (!axis) return nullptr;
  const std::vector<int64_t> in_strides = strides_of(x.shape);
  std::vector<CopyPlan> copies;
  int64_t at = 0;
  for (size_t o = 0; o < info.outputs.size(); ++o) {
    const TensorArg& y = info.outputs[o];
    if (y.dtype != x.dtype || y.rank() != x.rank()) return nullptr;
    for (int d = 0; d < x.rank(); ++d) {
      if (d != *axis && y.shape[d] != x.shape[d]) return nullptr;
    }
    CopyPlan c;
    c.output = static_cast<int>(o);
    if (!make_copy(y.shape, in_strides, at * in_strides[*axis], strides_of(y.shape), 0, elem, &c))
      return nullptr;
    at += y.shape[*axis];
    copies.push_back(c);
  }
  if (at != x.shape[*axis]) return nullptr;
  return std::make_unique<StridedCopyKernel>(ctx, info.node, std::move(copies), "cuda:split");
}

// Concat: every input copied into its slice of the output along `axis`.
std::unique_ptr<Kernel> make_concat(const KernelInfo& info, CudaContext* ctx) {
  if (info.inputs.empty() || info.outputs.size() != 1) return nullptr;
  const TensorArg& y = info.outputs[0];
  const size_t elem = dtype_size(y.dtype);
  if (!word_size(elem) || y.rank() < 1) return nullptr;
  const std::optional<int> axis = normalize_axis(info.node->get_int("axis", 0), y.rank());
  if (!axis) return nullptr;
  const std::vector<int64_t> out_strides = strides_of(y.shape);
  std::vector<CopyPlan> copies;
  int64_t at = 0;
  for (size_t i = 0; i < info.inputs.size(); ++i) {
    if (!info.input_present(static_cast<int>(i))) return nullptr;
    const TensorArg& x = info.inputs[i];
    if (x.dtype != y.dtype || x.rank() != y.rank()) return nullptr;
    for (int d = 0; d < y.rank(); ++d) {
      if (d != *axis && x.shape[d] != y.shape[d]) return nullptr;
    }
    CopyPlan c;
    c.input = static_cast<int>(i);
    if (!make_copy(x.shape, strides_of(x.shape), 0, out_strides, at * out_strides[*axis], elem, &c))
      return nullptr;
    at += x.shape[*axis];
    if (c.params.n > 0) copies.push_back(c);
  }
  if (at != y.shape[*axis]) return nullptr;
  return std::make_unique<StridedCopyKernel>(ctx, info.node, std::move(copies), "cuda:concat");
}

}  // namespace

void register_copy_ops(KernelFactoryRegistry& registry, CudaContext* ctx) {
  registry.add("Slice", [ctx](const KernelInfo& info) { return make_slice(info, ctx); });
  registry.add("Split", [ctx](const KernelInfo& info) { return make_split(info, ctx); });
  registry.add("Concat", [ctx](const KernelInfo& info) { return make_concat(info, ctx); });
}

}  // namespace seqrun::backends::cuda
