// Dim / TensorType printing and helpers.
#include "ir/types.h"

namespace seqrun {

std::string Dim::to_string() const {
  if (is_static()) return std::to_string(value_);
  if (is_symbol()) return symbol_;
  return "?";
}

TensorType TensorType::from_shape(DType dtype, const std::vector<int64_t>& shape) {
  std::vector<Dim> dims;
  dims.reserve(shape.size());
  for (int64_t d : shape) dims.emplace_back(d);
  return TensorType(dtype, std::move(dims));
}

bool TensorType::is_static() const {
  if (!rank_known_) return false;
  for (const Dim& d : dims_) {
    if (!d.is_static()) return false;
  }
  return true;
}

std::optional<std::vector<int64_t>> TensorType::static_shape() const {
  if (!is_static()) return std::nullopt;
  std::vector<int64_t> s;
  for (const Dim& d : dims_) s.push_back(d.value());
  return s;
}

std::string TensorType::to_string() const {
  std::string s(dtype_name(dtype_));
  if (!rank_known_) return s + "[*]";
  s += "[";
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (i) s += ", ";
    s += dims_[i].to_string();
  }
  return s + "]";
}

}  // namespace seqrun
