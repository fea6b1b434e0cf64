// Shape specialization: binding input shapes folds a GPT-style reshape chain, symbolic types become static,
// big constants stay, data-dependent shapes are reported, bad bindings name the input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "ir/infer.h"
#include "ir/text.h"
#include "runtime/executor.h"
#include "runtime/specialize.h"

using namespace seqrun;
using runtime::InputSpec;
using runtime::specialize_graph;
using runtime::SpecializeOptions;
using runtime::SpecializeReport;

namespace {

Value* i64_const(Graph& g, const std::string& name, const std::vector<int64_t>& values) {
  return g.add_constant(name, Tensor::from_vector<int64_t>({static_cast<int64_t>(values.size())}, values));
}

// The attention reshape chain a GPT-2 export contains: x: f32[batch, seq, 64] is split into 4 heads of 16
// with a shape computed from Shape(x), transposed to [batch, 4, seq, 16], scaled, transposed back and
// merged with a second computed shape. Also emits positions = Range(0, seq, 1) as a second output.
std::unique_ptr<Graph> gpt_reshape_chain() {
  auto g = std::make_unique<Graph>("gpt_chain");
  Value* x = g->add_input("x", TensorType(DType::f32, {Dim::symbol("batch"), Dim::symbol("seq"), Dim(64)}));
  Node* shape = g->add_node("Shape", {x}, 1, {}, {"x_shape"});
  Value* i0 = g->add_constant("i0", Tensor::scalar<int64_t>(0));
  Value* i1 = g->add_constant("i1", Tensor::scalar<int64_t>(1));
  Node* batch = g->add_node("Gather", {shape->output(0), i0}, 1, {{"axis", int64_t{0}}}, {"batch"});
  Node* seq = g->add_node("Gather", {shape->output(0), i1}, 1, {{"axis", int64_t{0}}}, {"seq"});
  Value* axes0 = i64_const(*g, "axes0", {0});
  Node* batch1 = g->add_node("Unsqueeze", {batch->output(0), axes0}, 1, {}, {"batch1"});
  Node* seq1 = g->add_node("Unsqueeze", {seq->output(0), axes0}, 1, {}, {"seq1"});
  Value* heads = i64_const(*g, "heads", {4, 16});
  Node* split_shape = g->add_node("Concat", {batch1->output(0), seq1->output(0), heads}, 1,
                                  {{"axis", int64_t{0}}}, {"split_shape"});
  Node* split = g->add_node("Reshape", {x, split_shape->output(0)}, 1, {}, {"split"});
  Node* tr = g->add_node("Transpose", {split->output(0)}, 1, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}},
                         {"heads_first"});
  Value* scale = g->add_constant("scale", Tensor::scalar<float>(0.25f));
  Node* scaled = g->add_node("Mul", {tr->output(0), scale}, 1, {}, {"scaled"});
  Node* back = g->add_node("Transpose", {scaled->output(0)}, 1, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}},
                           {"seq_first"});
  Value* width = i64_const(*g, "width", {64});
  Node* merge_shape = g->add_node("Concat", {batch1->output(0), seq1->output(0), width}, 1,
                                  {{"axis", int64_t{0}}}, {"merge_shape"});
  Node* merged = g->add_node("Reshape", {back->output(0), merge_shape->output(0)}, 1, {}, {"y"});
  Value* zero = g->add_constant("zero", Tensor::scalar<int64_t>(0));
  Node* positions = g->add_node("Range", {zero, seq->output(0), i1}, 1, {}, {"positions"});
  g->set_outputs({merged->output(0), positions->output(0)});
  REQUIRE(infer_graph_types(*g).is_ok());
  return g;
}

int count_op(const Graph& g, const std::string& op) {
  int n = 0;
  for (const Node* node : g.nodes()) n += node->op() == op ? 1 : 0;
  return n;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("specialize: a GPT-style reshape chain loses all its shape arithmetic") {
  auto g = gpt_reshape_chain();
  // Before binding, the graph really is symbolic: the split's shape is not known.
  REQUIRE_FALSE(g->find_value("split")->type().is_static());

  SpecializeReport report;
  auto s = specialize_graph(*g, {{DType::f32, {2, 5, 64}}}, {}, &report);
  INFO(s.status().message());
  REQUIRE(s.is_ok());
  const Graph& sg = **s;
  INFO(print_graph(sg));
  for (const char* op : {"Shape", "Gather", "Concat", "Unsqueeze", "Range"}) CHECK(count_op(sg, op) == 0);
  CHECK(count_op(sg, "Reshape") == 2);
  CHECK(count_op(sg, "Transpose") == 2);
  CHECK(count_op(sg, "Mul") == 1);
  CHECK(report.folded_shape_ops == 1);
  CHECK(report.dynamic_values.empty());

  // Symbolic -> static everywhere.
  for (const Node* node : sg.nodes()) {
    for (const Value* out : node->outputs()) {
      INFO(out->name() << ": " << out->type().to_string());
      CHECK(out->type().is_static());
    }
  }
  CHECK(sg.inputs()[0]->type() == TensorType::from_shape(DType::f32, {2, 5, 64}));
  CHECK(sg.find_value("split")->type() == TensorType::from_shape(DType::f32, {2, 5, 4, 16}));
  CHECK(sg.find_value("heads_first")->type() == TensorType::from_shape(DType::f32, {2, 4, 5, 16}));
  CHECK(sg.outputs()[0]->type() == TensorType::from_shape(DType::f32, {2, 5, 64}));

  // The folded shapes are the hand-computed ones, and positions = 0..seq-1 became a constant output.
  const Node* split = sg.find_value("split")->producer();
  REQUIRE(split != nullptr);
  REQUIRE(split->input(1)->is_constant());
  CHECK(split->input(1)->constant().to_i64_vector() == std::vector<int64_t>{2, 5, 4, 16});
  const Value* positions = sg.outputs()[1];
  REQUIRE(positions->is_constant());
  CHECK(positions->name() == "positions");
  CHECK(positions->constant().to_i64_vector() == std::vector<int64_t>{0, 1, 2, 3, 4});

  // The original graph is untouched.
  CHECK(count_op(*g, "Shape") == 1);
  CHECK_FALSE(g->find_value("split")->type().is_static());
}

TEST_CASE("specialize: the result is deterministic and another shape gives other constants") {
  auto g = gpt_reshape_chain();
  auto a = specialize_graph(*g, {{DType::f32, {1, 3, 64}}});
  auto b = specialize_graph(*g, {{DType::f32, {1, 3, 64}}});
  auto c = specialize_graph(*g, {{DType::f32, {3, 7, 64}}});
  REQUIRE(a.is_ok());
  REQUIRE(b.is_ok());
  REQUIRE(c.is_ok());
  CHECK(print_graph(**a) == print_graph(**b));
  CHECK(print_graph(**a) != print_graph(**c));
  CHECK((*c)->find_value("split")->producer()->input(1)->constant().to_i64_vector() ==
        std::vector<int64_t>{3, 7, 4, 16});
}

TEST_CASE("specialize: the specialized graph computes what the original computes") {
  auto g = gpt_reshape_chain();
  auto s = specialize_graph(*g, {{DType::f32, {2, 3, 64}}});
  REQUIRE(s.is_ok());
  std::vector<float> xs(2 * 3 * 64);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>(i % 17) - 8.0f;
  Tensor x = Tensor::from_vector<float>({2, 3, 64}, xs);
  auto out = runtime::ReferenceExecutor().run(**s, {x});
  REQUIRE(out.is_ok());
  // Split into heads, scale, and merge back is x * 0.25 elementwise.
  std::vector<float> y = (*out)[0].to_f32_vector();
  REQUIRE(y.size() == xs.size());
  for (size_t i = 0; i < xs.size(); ++i) CHECK(y[i] == xs[i] * 0.25f);
  CHECK((*out)[1].to_i64_vector() == std::vector<int64_t>{0, 1, 2});
}

TEST_CASE("specialize: constants beyond the fold limit stay, small ones fold") {
  auto g = std::make_unique<Graph>("casts");
  Value* x = g->add_input("x", TensorType(DType::f64, {Dim(64)}));
  Value* big = g->add_constant("big", Tensor::empty(DType::f32, {64}));     // 512 bytes as f64
  Value* small = g->add_constant("small", Tensor::empty(DType::f32, {4}));  // 32 bytes as f64
  Node* cb = g->add_node("Cast", {big}, 1, {{"to", int64_t{11}}}, {"big64"});
  Node* cs = g->add_node("Cast", {small}, 1, {{"to", int64_t{11}}}, {"small64"});
  Node* sum = g->add_node("ReduceSum", {cs->output(0)}, 1, {{"keepdims", int64_t{0}}}, {"small_sum"});
  Node* add = g->add_node("Add", {x, cb->output(0)}, 1, {}, {"y"});
  Node* add2 = g->add_node("Add", {add->output(0), sum->output(0)}, 1, {}, {"z"});
  g->set_outputs({add2->output(0)});
  REQUIRE(infer_graph_types(*g).is_ok());
  SpecializeOptions options;
  options.max_folded_bytes = 256;
  SpecializeReport report;
  auto s = specialize_graph(*g, {{DType::f64, {64}}}, options, &report);
  INFO(s.status().message());
  REQUIRE(s.is_ok());
  INFO(print_graph(**s));
  CHECK(count_op(**s, "Cast") == 1);  // the 512-byte one
  CHECK(count_op(**s, "ReduceSum") == 0);
  CHECK(report.folded_nodes == 2);  // the small Cast, then the ReduceSum of its constant
}

TEST_CASE("specialize: data-dependent shapes are reported, not guessed") {
  auto g = std::make_unique<Graph>("nz");
  Value* x = g->add_input("x", TensorType(DType::f32, {Dim::symbol("n")}));
  Node* nz = g->add_node("NonZero", {x}, 1, {}, {"where"});
  Node* cast = g->add_node("Cast", {nz->output(0)}, 1, {{"to", int64_t{1}}}, {"where_f"});
  g->set_outputs({cast->output(0)});
  REQUIRE(infer_graph_types(*g).is_ok());
  SpecializeReport report;
  auto s = specialize_graph(*g, {{DType::f32, {6}}}, {}, &report);
  REQUIRE(s.is_ok());
  CHECK(std::find(report.dynamic_values.begin(), report.dynamic_values.end(), "where") !=
        report.dynamic_values.end());
  CHECK(std::find(report.dynamic_values.begin(), report.dynamic_values.end(), "where_f") !=
        report.dynamic_values.end());
}

TEST_CASE("specialize: bindings that contradict the graph name the input") {
  auto g = gpt_reshape_chain();
  SECTION("rank") {
    auto s = specialize_graph(*g, {{DType::f32, {2, 64}}});
    REQUIRE_FALSE(s.is_ok());
    CHECK(contains(s.status().message(), "input 'x'"));
  }
  SECTION("static dim") {
    auto s = specialize_graph(*g, {{DType::f32, {2, 5, 63}}});
    REQUIRE_FALSE(s.is_ok());
    CHECK(contains(s.status().message(), "input 'x'"));
    CHECK(contains(s.status().message(), "dim 2 must be 64"));
  }
  SECTION("dtype") {
    auto s = specialize_graph(*g, {{DType::f16, {2, 5, 64}}});
    REQUIRE_FALSE(s.is_ok());
    CHECK(contains(s.status().message(), "input 'x'"));
  }
  SECTION("count") {
    auto s = specialize_graph(*g, {});
    REQUIRE_FALSE(s.is_ok());
    CHECK(contains(s.status().message(), "expects 1 inputs"));
  }
}

TEST_CASE("specialize: shape signatures tell bindings apart") {
  CHECK(runtime::shape_signature({{DType::f32, {1, 8}}, {DType::i64, {1, 8}}}) == "f32[1, 8];i64[1, 8]");
  CHECK(runtime::shape_signature({{DType::f32, {1, 8}}}) != runtime::shape_signature({{DType::f32, {8, 1}}}));
  CHECK(runtime::shape_signature({{DType::f32, {}}}) == "f32[]");
}
