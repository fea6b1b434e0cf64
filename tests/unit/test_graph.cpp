// Graph construction, use lists, dead-code removal and topological sorting.
#include <catch2/catch.hpp>

#include "ir/graph.h"
#include "ir/verify.h"

using namespace seqrun;

TEST_CASE("graph: use lists follow set_input and replace_all_uses") {
  Graph g;
  Value* x = g.add_input("x", TensorType(DType::f32, {Dim(2)}));
  Value* y = g.add_input("y", TensorType(DType::f32, {Dim(2)}));
  Node* add = g.add_node("Add", {x, y}, 1, {}, {"s"});
  g.set_outputs({add->output(0)});
  CHECK(x->uses().size() == 1);
  g.replace_all_uses(x, y);
  CHECK(x->uses().empty());
  CHECK(y->uses().size() == 2);
  CHECK(add->input(0) == y);
}

TEST_CASE("graph: sort_topologically reports a cycle") {
  Graph g;
  Value* x = g.add_input("x", TensorType(DType::f32, {Dim(2)}));
  Node* a = g.add_node("Neg", {x}, 1, {}, {"a"});
  Node* b = g.add_node("Neg", {a->output(0)}, 1, {}, {"b"});
  a->set_input(0, b->output(0));
  g.set_outputs({b->output(0)});
  Status st = g.sort_topologically();
  REQUIRE_FALSE(st.is_ok());
  CHECK(st.message().find("cycle") != std::string::npos);
}

TEST_CASE("graph: remove_dead_code drops unused nodes only") {
  Graph g;
  Value* x = g.add_input("x", TensorType(DType::f32, {Dim(2)}));
  Node* used = g.add_node("Neg", {x}, 1, {}, {"used"});
  g.add_node("Exp", {x}, 1, {}, {"dead"});
  g.set_outputs({used->output(0)});
  CHECK(g.remove_dead_code() == 1);
  CHECK(g.num_nodes() == 1);
  CHECK(g.find_value("dead") == nullptr);
}
