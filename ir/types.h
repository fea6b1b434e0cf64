// Dim and TensorType: the static or symbolic shape of a value, as the IR knows it before binding inputs.
//
// A Dim is a known size (>= 0), a named symbol ("batch", "seq": equal names mean equal sizes) or
// unknown ("?"). A TensorType is a dtype plus either a list of dims or "unknown rank".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ir/dtype.h"

namespace seqrun {

class Dim {
 public:
  Dim() = default;  // unknown
  Dim(int64_t value) : value_(value) {}  // NOLINT(google-explicit-constructor): static dims read naturally
  static Dim symbol(std::string name) {
    Dim d;
    d.symbol_ = std::move(name);
    return d;
  }
  static Dim unknown() { return Dim(); }

  bool is_static() const { return value_ >= 0; }
  bool is_symbol() const { return !symbol_.empty(); }
  bool is_unknown() const { return value_ < 0 && symbol_.empty(); }
  int64_t value() const { return value_; }
  const std::string& symbol_name() const { return symbol_; }
  std::string to_string() const;  // "8", "seq", "?"
  bool operator==(const Dim& o) const { return value_ == o.value_ && symbol_ == o.symbol_; }
  bool operator!=(const Dim& o) const { return !(*this == o); }

 private:
  int64_t value_ = -1;
  std::string symbol_;
};

class TensorType {
 public:
  TensorType() = default;
  TensorType(DType dtype, std::vector<Dim> dims) : dtype_(dtype), dims_(std::move(dims)), rank_known_(true) {}
  static TensorType unknown_rank(DType dtype) {
    TensorType t;
    t.dtype_ = dtype;
    return t;
  }
  static TensorType from_shape(DType dtype, const std::vector<int64_t>& shape);

  DType dtype() const { return dtype_; }
  void set_dtype(DType d) { dtype_ = d; }
  bool has_rank() const { return rank_known_; }
  int rank() const { return static_cast<int>(dims_.size()); }
  const std::vector<Dim>& dims() const { return dims_; }
  const Dim& dim(int i) const { return dims_[i < 0 ? i + rank() : i]; }
  bool is_static() const;  // rank known and every dim static
  std::optional<std::vector<int64_t>> static_shape() const;
  // "f32[batch, 8, ?]", "f32[*]" for unknown rank, "i64[]" for a scalar.
  std::string to_string() const;
  bool operator==(const TensorType& o) const {
    return dtype_ == o.dtype_ && rank_known_ == o.rank_known_ && dims_ == o.dims_;
  }
  bool operator!=(const TensorType& o) const { return !(*this == o); }

 private:
  DType dtype_ = DType::undefined;
  std::vector<Dim> dims_;
  bool rank_known_ = false;
};

}  // namespace seqrun
