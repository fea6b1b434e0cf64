// The IR text form: print a Graph, parse it back. parse(print(g)) prints identically.
//
//   graph main(%x: f32[batch, 8], %w: f32[8, 8]) {
//     %w = const f32[8, 8] [...]                     (or "<elided N bytes>" when printing without weights)
//     %y = MatMul(%x, %w) : f32[batch, 8]
//     %a, %b = Split(%y, _) {axis = 1, num_outputs = 2} : f32[batch, 4], f32[batch, 4]
//     %r = Loop(%n, %c, %a) captures(%w) {body = graph body(%i: i64[], ...) captures(%w2: f32[8, 8]) {...}} : ...
//     return %y, %r
//   }
// Value names that are not plain identifiers are quoted: %"onnx::MatMul_12".
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "ir/graph.h"
#include "ir/status.h"

namespace seqrun {

struct PrintOptions {
  // Print constant tensors' values; when false, a constant larger than `inline_limit_elements`
  // prints as "<elided N bytes>" (which the parser rejects: such text is for reading only).
  bool print_weights = true;
  int64_t inline_limit_elements = 16;
};

std::string print_graph(const Graph& graph, const PrintOptions& options = {});
// Parses text produced by print_graph (or written by hand, e.g. pass tests). Errors give the
// line and column. The parsed graph gets types exactly as written (no inference).
Result<std::unique_ptr<Graph>> parse_graph(std::string_view text);

}  // namespace seqrun
