// Concat, Split and Slice as memcpy of contiguous runs (any element type, OpenMP over runs).
//
// Concat and Split view every tensor as [outer, axis * inner] around the axis: each outer row of the
// joined tensor is the inputs' (outputs') rows side by side, so one outer position and one operand is
// one memcpy, cut into pieces of at most kPieceBytes so large copies spread over the threads. Slice
// (constant starts/ends/axes/steps) is a StridedCopy: contiguous runs where the innermost sliced dims
// are whole or step 1, element loops otherwise. All memory-bound.
#include <algorithm>
#include <cstring>

#include "backends/cpu/cpu_common.h"
#include "backends/cpu/cpu_factories.h"
#include "backends/cpu/strided_copy.h"

namespace seqrun::backends::cpu {
namespace {

constexpr int64_t kPieceBytes = 1 << 16;

// One memcpy per outer row: operand `operand`, `bytes` long, at `operand_offset` within the
// operand's row and `joined_offset` within the joined tensor's row.
struct Piece {
  int operand;
  int64_t operand_offset, joined_offset, bytes;
};

// Concat (operands are inputs, joined is the output) and Split (the reverse).
class JoinKernel : public Kernel {
 public:
  JoinKernel(bool split, int64_t outer, int64_t joined_row, std::vector<int64_t> operand_rows)
      : split_(split), outer_(outer), joined_row_(joined_row), operand_rows_(std::move(operand_rows)) {
    int64_t joined_offset = 0;
    for (size_t k = 0; k < operand_rows_.size(); ++k) {
      for (int64_t off = 0; off < operand_rows_[k]; off += kPieceBytes) {
        pieces_.push_back(
            {static_cast<int>(k), off, joined_offset + off, std::min(kPieceBytes, operand_rows_[k] - off)});
      }
      joined_offset += operand_rows_[k];
    }
  }

  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs, void*) override {
    const int64_t pieces = static_cast<int64_t>(pieces_.size());
    const bool parallel = outer_ * joined_row_ >= 4 * kParallelMinElements && outer_ * pieces > 1;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t item = 0; item < outer_ * pieces; ++item) {
      const int64_t o = item / pieces;
      const Piece& p = pieces_[item % pieces];
      const int64_t operand_at = o * operand_rows_[p.operand] + p.operand_offset;
      const int64_t joined_at = o * joined_row_ + p.joined_offset;
      if (split_) {
        std::memcpy(outputs[p.operand].as<char>() + operand_at, inputs[0].as<const char>() + joined_at,
                    static_cast<size_t>(p.bytes));
      } else {
        std::memcpy(outputs[0].as<char>() + joined_at, inputs[p.operand].as<const char>() + operand_at,
                    static_cast<size_t>(p.bytes));
      }
    }
    return Status::ok();
  }
  std::string label() const override {
    return split_ ? "cpu:split" : "cpu:concat";
  }

 private:
  bool split_;
  int64_t outer_, joined_row_;
  std::vector<int64_t> operand_rows_;  // bytes per outer row
  std::vector<Piece> pieces_;
};

// The joined tensor's row bytes per operand, when every operand matches `joined` outside `axis`.
bool operand_rows(const Shape& joined, const std::vector<const TensorArg*>& operands, int axis, DType dtype,
                  std::vector<int64_t>& rows) {
  const int64_t inner = product(joined, axis + 1, joined.size()) * static_cast<int64_t>(dtype_size(dtype));
  int64_t along = 0;
  for (const TensorArg* t : operands) {
    if (t->dtype != dtype || t->shape.size() != joined.size()) return false;
    for (size_t d = 0; d < joined.size(); ++d) {
      if (static_cast<int>(d) != axis && t->shape[d] != joined[d]) return false;
    }
    rows.push_back(t->shape[axis] * inner);
    along += t->shape[axis];
  }
  return along == joined[axis];
}

// ONNX Slice clamping for one axis: first index and element count (same rules as the reference).
void slice_range(int64_t start, int64_t end, int64_t step, int64_t dim, int64_t& first, int64_t& length) {
  first = 0;
  length = 0;
  if (dim == 0) return;
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    if (end > start) length = 1 + (end - start - 1) / step;
  } else {
    start = std::clamp<int64_t>(start, 0, dim - 1);
    end = std::clamp<int64_t>(end, -1, dim - 1);
    const uint64_t magnitude = uint64_t{0} - static_cast<uint64_t>(step);
    if (start > end) length = static_cast<int64_t>(1 + static_cast<uint64_t>(start - end - 1) / magnitude);
  }
  first = start;
}

class SliceKernel : public Kernel {
 public:
  explicit SliceKernel(StridedCopy copy) : copy_(std::move(copy)) {}
  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs, void*) override {
    copy_.run(inputs[0].data, outputs[0].data);
    return Status::ok();
  }
  std::string label() const override { return "cpu:slice"; }

 private:
  StridedCopy copy_;
};

}  // namespace

std::unique_ptr<Kernel> make_concat_kernel(const KernelInfo& info) {
  if (info.inputs.empty() || info.outputs.size() != 1) return nullptr;
  const Shape& out = info.outputs[0].shape;
  const int axis = normalize_axis(info.node->get_int("axis", 0), static_cast<int>(out.size()));
  if (axis < 0) return nullptr;
  std::vector<const TensorArg*> operands;
  for (const TensorArg& t : info.inputs) {
    if (t.dtype == DType::undefined) return nullptr;
    operands.push_back(&t);
  }
  std::vector<int64_t> rows;
  if (!operand_rows(out, operands, axis, info.outputs[0].dtype, rows)) return nullptr;
  const int64_t joined =
      product(out, axis, out.size()) * static_cast<int64_t>(dtype_size(info.outputs[0].dtype));
  return std::make_unique<JoinKernel>(false, product(out, 0, axis), joined, std::move(rows));
}

std::unique_ptr<Kernel> make_split_kernel(const KernelInfo& info) {
  if (info.inputs.empty() || info.outputs.empty() || info.inputs[0].dtype == DType::undefined) return nullptr;
  const Shape& x = info.inputs[0].shape;
  const int axis = normalize_axis(info.node->get_int("axis", 0), static_cast<int>(x.size()));
  if (axis < 0) return nullptr;
  std::vector<const TensorArg*> operands;
  for (const TensorArg& t : info.outputs) operands.push_back(&t);
  // The planned output shapes are the split sizes (shape inference read `split` / num_outputs).
  std::vector<int64_t> rows;
  if (!operand_rows(x, operands, axis, info.inputs[0].dtype, rows)) return nullptr;
  const int64_t joined = product(x, axis, x.size()) * static_cast<int64_t>(dtype_size(info.inputs[0].dtype));
  return std::make_unique<JoinKernel>(true, product(x, 0, axis), joined, std::move(rows));
}

std::unique_ptr<Kernel> make_slice_kernel(const KernelInfo& info) {
  if (info.inputs.size() < 3 || info.outputs.size() != 1) return nullptr;
  const TensorArg& x = info.inputs[0];
  if (x.dtype == DType::undefined || info.outputs[0].dtype != x.dtype) return nullptr;
  const int rank = x.rank();
  std::vector<int64_t> starts, ends, axes, steps;
  if (!constant_ints(info.inputs[1], starts) || !constant_ints(info.inputs[2], ends)) return nullptr;
  if (info.input_present(3)) {
    if (!constant_ints(info.inputs[3], axes)) return nullptr;
  } else {
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  steps.assign(axes.size(), 1);
  if (info.input_present(4) && !constant_ints(info.inputs[4], steps)) return nullptr;
  if (starts.size() != axes.size() || ends.size() != axes.size() || steps.size() != axes.size())
    return nullptr;
  std::vector<int64_t> in_strides(rank, 1);
  for (int d = rank - 1; d > 0; --d) in_strides[d - 1] = in_strides[d] * x.shape[d];
  std::vector<int64_t> out = x.shape, strides = in_strides;
  std::vector<bool> seen(rank, false);
  int64_t offset = 0;
  for (size_t i = 0; i < axes.size(); ++i) {
    const int axis = normalize_axis(axes[i], rank);
    if (axis < 0 || seen[axis] || steps[i] == 0) return nullptr;
    seen[axis] = true;
    int64_t first, length;
    slice_range(starts[i], ends[i], steps[i], x.shape[axis], first, length);
    out[axis] = length;
    if (length == 0) continue;
    offset += first * in_strides[axis];
    strides[axis] = length > 1 ? in_strides[axis] * steps[i] : 0;
  }
  if (info.outputs[0].shape != Shape(out.begin(), out.end())) return nullptr;
  return std::make_unique<SliceKernel>(StridedCopy(dtype_size(x.dtype), out, strides, offset));
}

}  // namespace seqrun::backends::cpu
