// Attribute: one typed node attribute (int, float, string, their lists, a tensor, or a nested graph).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "ir/tensor.h"

namespace seqrun {

class Graph;

// Numeric values are stored in the model file: append only.
enum class AttrType : uint8_t { Int = 0, Float = 1, String = 2, Ints = 3, Floats = 4, Strings = 5, Tensor = 6, Graph = 7 };
const char* attr_type_name(AttrType t);

class Attribute {
 public:
  using GraphPtr = std::shared_ptr<Graph>;
  Attribute() : value_(int64_t{0}) {}
  Attribute(int64_t v) : value_(v) {}  // NOLINT: attributes are built from literals everywhere
  Attribute(int v) : value_(int64_t{v}) {}  // NOLINT
  Attribute(float v) : value_(v) {}    // NOLINT
  Attribute(double v) : value_(static_cast<float>(v)) {}  // NOLINT
  Attribute(std::string v) : value_(std::move(v)) {}      // NOLINT
  Attribute(const char* v) : value_(std::string(v)) {}    // NOLINT
  Attribute(std::vector<int64_t> v) : value_(std::move(v)) {}  // NOLINT
  Attribute(std::vector<float> v) : value_(std::move(v)) {}    // NOLINT
  Attribute(std::vector<std::string> v) : value_(std::move(v)) {}  // NOLINT
  Attribute(Tensor v) : value_(std::move(v)) {}                    // NOLINT
  Attribute(GraphPtr v) : value_(std::move(v)) {}                  // NOLINT

  AttrType type() const { return static_cast<AttrType>(value_.index()); }
  int64_t i() const { return std::get<int64_t>(value_); }
  float f() const { return std::get<float>(value_); }
  const std::string& s() const { return std::get<std::string>(value_); }
  const std::vector<int64_t>& ints() const { return std::get<std::vector<int64_t>>(value_); }
  const std::vector<float>& floats() const { return std::get<std::vector<float>>(value_); }
  const std::vector<std::string>& strings() const { return std::get<std::vector<std::string>>(value_); }
  const Tensor& tensor() const { return std::get<Tensor>(value_); }
  const GraphPtr& graph() const { return std::get<GraphPtr>(value_); }
  // Deep equality (tensors by bytes, graphs by printed text).
  bool equals(const Attribute& other) const;

 private:
  std::variant<int64_t, float, std::string, std::vector<int64_t>, std::vector<float>, std::vector<std::string>,
               Tensor, GraphPtr>
      value_;
};

}  // namespace seqrun
