// IR text form: printing, parsing, exact round trips and parse errors with positions.
#include <catch2/catch.hpp>

#include <cmath>

#include "ir/graph.h"
#include "ir/text.h"
#include "ir/verify.h"

using namespace seqrun;

namespace {
// A graph that uses every attribute type, symbolic/unknown dims, absent inputs, a quoted name,
// a node location, constants of several dtypes and a nested body with a capture.
std::unique_ptr<Graph> rich_graph() {
  auto g = std::make_unique<Graph>("main");
  Value* x = g->add_input("x", TensorType(DType::f32, {Dim::symbol("batch"), Dim(4), Dim::unknown()}));
  Value* n = g->add_input("onnx::count", TensorType(DType::i64, {}));
  Value* w = g->add_constant("w", Tensor::from_vector<float>({2, 2}, {1.5f, -2.0f, 1e-30f, 3.25e12f}));
  Value* h = g->add_constant("h", Tensor::from_vector<float>({2}, {0.1f, NAN}).cast(DType::f16));
  Value* idx = g->add_constant("idx", Tensor::from_vector<int64_t>({3}, {-1, 0, int64_t{1} << 40}));
  Value* flag = g->add_constant("flag", Tensor::from_vector<bool>({2}, {true, false}));

  auto body = std::make_shared<Graph>("body");
  Value* it = body->add_input("i", TensorType(DType::i64, {}));
  Value* cond = body->add_input("cond_in", TensorType(DType::boolean, {}));
  Value* acc = body->add_input("acc", TensorType::unknown_rank(DType::f32));
  Value* cap = body->add_capture("w_outer", TensorType(DType::f32, {Dim(2), Dim(2)}));
  Node* add = body->add_node("Add", {acc, cap}, 1, {}, {"acc_next"});
  body->set_value_type(add->output(0), TensorType::unknown_rank(DType::f32));
  Node* ident = body->add_node("Identity", {cond}, 1, {}, {"cond_out"});
  body->set_value_type(ident->output(0), TensorType(DType::boolean, {}));
  (void)it;
  body->set_outputs({ident->output(0), add->output(0)});

  std::map<std::string, Attribute> attrs;
  attrs["body"] = Attribute(body);
  Node* loop = g->add_node("Loop", {n, nullptr, w, w}, 1, attrs, {"loop_out"});
  loop->set_num_captures(1);
  g->set_value_type(loop->output(0), TensorType(DType::f32, {Dim(2), Dim(2)}));

  std::map<std::string, Attribute> cattrs;
  cattrs["to"] = Attribute(int64_t{1});
  Node* cast = g->add_node("Cast", {h}, 1, cattrs, {"h32"});
  cast->set_name("/model/Cast_1");
  g->set_value_type(cast->output(0), TensorType(DType::f32, {Dim(2)}));

  std::map<std::string, Attribute> rattrs;
  rattrs["f"] = Attribute(0.125f);
  rattrs["fs"] = Attribute(std::vector<float>{1.0f, -0.5f});
  rattrs["is"] = Attribute(std::vector<int64_t>{});
  rattrs["s"] = Attribute(std::string("a \"quoted\"\nline"));
  rattrs["ss"] = Attribute(std::vector<std::string>{"p", "q"});
  rattrs["t"] = Attribute(Tensor::from_vector<int32_t>({2}, {7, -8}));
  rattrs["k"] = Attribute(int64_t{-3});
  Node* where = g->add_node("Where", {flag, cast->output(0), x}, 1, rattrs, {"sel"});
  g->set_value_type(where->output(0), TensorType::unknown_rank(DType::f32));
  (void)idx;
  g->set_outputs({loop->output(0), where->output(0)});
  return g;
}
}  // namespace

TEST_CASE("text: print -> parse -> print is identical") {
  auto g = rich_graph();
  std::string text = print_graph(*g);
  auto parsed = parse_graph(text);
  INFO(text);
  REQUIRE(parsed.is_ok());
  CHECK(print_graph(**parsed) == text);
  // Structure survives, not only text: nested capture counts and node names.
  const Graph& p = **parsed;
  CHECK(p.inputs().size() == 2);
  CHECK(p.find_value("onnx::count") != nullptr);
  CHECK(p.find_value("h")->constant().dtype() == DType::f16);
  CHECK(std::isnan(p.find_value("h")->constant().get_f64(1)));
  CHECK(p.find_value("idx")->constant().data<int64_t>()[2] == (int64_t{1} << 40));
  CHECK(p.find_value("w")->constant().data<float>()[3] == 3.25e12f);
  CHECK(p.find_value("w")->constant().data<float>()[2] == 1e-30f);
  Node* loop = p.find_value("loop_out")->producer();
  CHECK(loop->num_captures() == 1);
  CHECK(loop->input(1) == nullptr);
  CHECK(loop->get_graph("body")->captures().size() == 1);
  CHECK(p.find_value("h32")->producer()->name() == "/model/Cast_1");
  const Node* where = p.find_value("sel")->producer();
  CHECK(where->attr("s")->s() == "a \"quoted\"\nline");
  CHECK(where->attr("f")->f() == 0.125f);
  CHECK(where->attr("is")->type() == AttrType::Ints);
  CHECK(where->attr("t")->tensor().data<int32_t>()[1] == -8);
}

TEST_CASE("text: the documented example form parses") {
  const char* text = R"(
graph main(%x: f32[batch, 8], %y: f32[batch, 8]) {
  %s = Add(%x, %y) : f32[batch, 8]
  %e = Exp(%s) : f32[batch, 8]   # comments are allowed
  return %e
}
)";
  auto g = parse_graph(text);
  REQUIRE(g.is_ok());
  CHECK((*g)->num_nodes() == 2);
  CHECK((*g)->outputs()[0]->type().to_string() == "f32[batch, 8]");
  CHECK(verify_graph(**g).is_ok());
}

TEST_CASE("text: parse errors name the line and the problem") {
  struct Case {
    const char* text;
    const char* expect;
  } cases[] = {
      {"graph g(%x: f32[2]) {\n  %y = Frob(%x) : f32[2]\n  return %y\n}", "line 2"},
      {"graph g(%x: f32[2]) {\n  %y = Neg(%z) : f32[2]\n  return %y\n}", "'%z' is not defined"},
      {"graph g(%x: f32[2]) {\n  %x = Neg(%x) : f32[2]\n  return %x\n}", "defined twice"},
      {"graph g(%x: q32[2]) { return %x }", "unknown dtype"},
      {"graph g(%x: f32[2]) {\n  %c = const f32[2] [1.0]\n  return %x\n}", "1 values"},
      {"graph g(%x: f32[2]) {\n  %c = const f32[2] [1.0, 2.0, 3.0]\n  return %x\n}", "more values"},
      {"graph g(%x: f32[2]) {\n  %y = Neg(%x) : f32[2]\n", "unterminated"},
      {"graph g(%x: f32[2]) { %s = \"abc", "unterminated string"},
      {"graph g(%x: f32[2]) {\n  %c = const f32[1000] <elided 4000 bytes>\n return %x }", "elided"},
  };
  for (const auto& c : cases) {
    auto g = parse_graph(c.text);
    INFO(c.text);
    REQUIRE_FALSE(g.is_ok());
    CHECK_THAT(g.status().message(), Catch::Matchers::Contains(c.expect));
  }
}

TEST_CASE("text: elided printing hides large weights") {
  Graph g;
  Value* x = g.add_input("x", TensorType(DType::f32, {Dim(100)}));
  Value* w = g.add_constant("w", Tensor::zeros(DType::f32, {100}));
  Node* a = g.add_node("Add", {x, w}, 1, {}, {"y"});
  g.set_outputs({a->output(0)});
  PrintOptions opts;
  opts.print_weights = false;
  CHECK_THAT(print_graph(g, opts), Catch::Matchers::Contains("<elided 400 bytes>"));
}
