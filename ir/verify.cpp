// Structural verification of graphs (see verify.h for the list of checks).
#include "ir/verify.h"

#include <unordered_set>

#include "ir/op_schema.h"

namespace seqrun {

namespace {
Status verify_impl(const Graph& graph, int depth) {
  if (depth > 64) return make_error("graph '{}': nested graphs deeper than 64 levels", graph.name());
  std::unordered_set<const Value*> defined;
  std::unordered_set<std::string> names;
  for (const Value* v : graph.values()) {
    if (!names.insert(v->name()).second) return make_error("graph '{}': duplicate value name '{}'", graph.name(), v->name());
    if (v->owner() != &graph) return make_error("graph '{}': value '{}' belongs to another graph", graph.name(), v->name());
  }
  for (const Value* v : graph.inputs()) defined.insert(v);
  for (const Value* v : graph.captures()) defined.insert(v);
  for (const Value* v : graph.values()) {
    if (v->is_constant()) defined.insert(v);
  }
  for (const Node* n : graph.nodes()) {
    SEQRUN_TRY(verify_node_signature(*n));
    for (int i = 0; i < n->num_inputs(); ++i) {
      const Value* in = n->input(i);
      if (in == nullptr) {
        if (i >= n->num_explicit_inputs()) return make_error("{}: capture {} is absent", n->describe(), i);
        continue;
      }
      if (in->owner() != &graph) {
        return make_error("{}: input '{}' belongs to another graph", n->describe(), in->name());
      }
      if (defined.count(in) == 0) {
        return make_error("{}: input '{}' is used before it is defined (missing input or cycle)", n->describe(),
                          in->name());
      }
      bool listed = false;
      for (const Use& u : in->uses()) listed |= (u.node == n && u.input_index == i);
      if (!listed) return make_error("{}: use list of '{}' is inconsistent", n->describe(), in->name());
    }
    for (const auto& [key, attr] : n->attrs()) {
      if (attr.type() != AttrType::Graph) continue;
      const Graph& body = *attr.graph();
      if (static_cast<int>(body.captures().size()) != n->num_captures()) {
        return make_error("{}: body '{}' has {} captures, node passes {}", n->describe(), key,
                          body.captures().size(), n->num_captures());
      }
      Status st = verify_impl(body, depth + 1);
      if (!st) return st.with_context(n->describe() + " body '" + key + "'");
    }
    for (int i = 0; i < n->num_outputs(); ++i) {
      const Value* out = n->output(i);
      if (out->producer() != n || out->producer_output() != i) {
        return make_error("{}: output {} ('{}') does not name it as producer", n->describe(), i, out->name());
      }
      defined.insert(out);
    }
  }
  for (const Value* v : graph.outputs()) {
    if (v == nullptr || defined.count(v) == 0) {
      return make_error("graph '{}': output '{}' is not defined", graph.name(), v ? v->name() : "<null>");
    }
  }
  return Status::ok();
}
}  // namespace

Status verify_graph(const Graph& graph) { return verify_impl(graph, 0); }

}  // namespace seqrun
