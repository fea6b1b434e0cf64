// Helpers shared by the unit tests (header-only): random tensors from a caller's generator, IR text parsing,
// one-node graphs, op counts and lookups, a normalized error, and token slices of [B, n, D] tensors.
//
// Every helper that can fail REQUIREs (Catch2), so a failure stops the test case that called it and shows
// the status message. Random tensors draw from the generator the test passes in: each test file keeps its
// own seeded generator, so its values do not depend on which other tests ran.
#pragma once

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "ir/attribute.h"
#include "ir/graph.h"
#include "ir/infer.h"
#include "ir/tensor.h"
#include "ir/text.h"

namespace seqrun::test {

// An f32 tensor of `shape`, uniform in [lo, hi), drawn from `gen` in element order.
inline Tensor random_uniform(std::mt19937& gen, const Shape& shape, float lo = -1.0f, float hi = 1.0f) {
  Tensor t = Tensor::empty(DType::f32, shape);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(gen);
  return t;
}

// The graph of IR text; REQUIREs that it parses.
inline std::unique_ptr<Graph> parse(const std::string& text) {
  auto g = parse_graph(text);
  INFO(g.status().message());
  REQUIRE(g.is_ok());
  return std::move(g).value();
}

// "Add=1 LTIScan=1": the top-level op counts, ops in name order.
inline std::string op_counts(const Graph& g) {
  std::map<std::string, int> counts;
  for (const Node* n : g.nodes()) counts[n->op()]++;
  std::string s;
  for (const auto& [op, n] : counts) s += (s.empty() ? "" : " ") + op + "=" + std::to_string(n);
  return s;
}

// The first top-level node of type `op`, or nullptr.
inline const Node* find_op(const Graph& g, const std::string& op) {
  for (const Node* n : g.nodes()) {
    if (n->op() == op) return n;
  }
  return nullptr;
}

// sum((a - b)^2) / sum(b^2) (the plain sum when b is all zeros); a NaN in a counts as a huge error.
inline double normalized_error(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double num = 0.0, den = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.get_f64(i), y = b.get_f64(i);
    num += std::isnan(x) ? 1e30 : (x - y) * (x - y);
    den += y * y;
  }
  return den == 0.0 ? num : num / den;
}

// A graph of one node and its inputs.
struct OneNode {
  std::unique_ptr<Graph> graph = std::make_unique<Graph>("one_node");
  Node* node = nullptr;
};

// One `op` node named `name` whose inputs are graph inputs "in<i>" of the tensors' types (an undefined
// tensor: an absent optional input; absent trailing inputs are left off), with its output types inferred
// (REQUIREd).
inline OneNode build_one_node(const std::string& op, const std::vector<Tensor>& inputs, int num_outputs,
                              const std::map<std::string, Attribute>& attrs, const std::string& name) {
  OneNode b;
  std::vector<Value*> ins;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    ins.push_back(t.defined() ? b.graph->add_input("in" + std::to_string(i),
                                                   TensorType::from_shape(t.dtype(), t.shape()))
                              : nullptr);
  }
  while (!ins.empty() && ins.back() == nullptr) ins.pop_back();
  b.node = b.graph->add_node(op, ins, num_outputs, attrs);
  b.node->set_name(name);
  Status st = infer_node_types(*b.node);
  INFO(st.message());
  REQUIRE(st.is_ok());
  return b;
}

// Tokens [begin, begin + count) of an f32 [B, n, D] tensor.
inline Tensor token_slice(const Tensor& t, int64_t begin, int64_t count) {
  const int64_t B = t.dim(0), n = t.dim(1), D = t.dim(2);
  Tensor out = Tensor::empty(DType::f32, {B, count, D});
  for (int64_t b = 0; b < B; ++b) {
    const float* src = t.data<float>() + (b * n + begin) * D;
    std::copy(src, src + count * D, out.data<float>() + b * count * D);
  }
  return out;
}

}  // namespace seqrun::test
