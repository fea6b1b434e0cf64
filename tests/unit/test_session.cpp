// Session: outputs against naive loops, input checking by position and by name, pipelines -O0/-O1/explicit.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <unistd.h>

#include <filesystem>

#include "ir/serialize.h"
#include "runtime/session.h"

using namespace seqrun;
using seqrun::runtime::Session;
using seqrun::runtime::SessionOptions;

namespace {

constexpr int64_t kIn = 3;
constexpr int64_t kOut = 2;
const std::vector<float> kW = {0.5f, -1.0f, 2.0f, 0.25f, -0.75f, 1.5f};  // [kIn, kOut], row-major
const std::vector<float> kB = {0.1f, -0.2f};

// y = Relu(x @ W + b), x: f32[batch, 3]; plus an Identity on the way (canonicalize removes it at -O1).
std::unique_ptr<Graph> linear_relu_graph() {
  auto g = std::make_unique<Graph>("linear_relu");
  Value* x = g->add_input("x", TensorType(DType::f32, {Dim::symbol("batch"), Dim(kIn)}));
  Value* w = g->add_constant("W", Tensor::from_vector<float>({kIn, kOut}, kW));
  Value* b = g->add_constant("b", Tensor::from_vector<float>({kOut}, kB));
  Node* mm = g->add_node("MatMul", {x, w}, 1, {}, {"xw"});
  Node* add = g->add_node("Add", {mm->output(0), b}, 1, {}, {"xwb"});
  Node* id = g->add_node("Identity", {add->output(0)}, 1, {}, {"xwb_copy"});
  Node* relu = g->add_node("Relu", {id->output(0)}, 1, {}, {"y"});
  g->set_outputs({relu->output(0)});
  return g;
}

std::vector<float> naive_linear_relu(const std::vector<float>& x, int64_t batch) {
  std::vector<float> y(static_cast<size_t>(batch * kOut));
  for (int64_t r = 0; r < batch; ++r) {
    for (int64_t c = 0; c < kOut; ++c) {
      float acc = kB[c];
      for (int64_t k = 0; k < kIn; ++k) acc += x[r * kIn + k] * kW[k * kOut + c];
      y[r * kOut + c] = acc > 0.0f ? acc : 0.0f;
    }
  }
  return y;
}

// sum = a + b, prod = a * b with a, b: f32[n].
std::unique_ptr<Graph> two_in_two_out_graph() {
  auto g = std::make_unique<Graph>("pair");
  Value* a = g->add_input("a", TensorType(DType::f32, {Dim::symbol("n")}));
  Value* b = g->add_input("b", TensorType(DType::f32, {Dim::symbol("n")}));
  Node* sum = g->add_node("Add", {a, b}, 1, {}, {"sum"});
  Node* prod = g->add_node("Mul", {a, b}, 1, {}, {"prod"});
  g->set_outputs({sum->output(0), prod->output(0)});
  return g;
}

std::unique_ptr<Session> make_session(std::unique_ptr<Graph> g, const SessionOptions& options = {}) {
  auto s = Session::from_graph(std::move(g), options);
  INFO(s.status().message());
  REQUIRE(s.is_ok());
  return std::move(s).value();
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

void check_close(const Tensor& t, const std::vector<float>& expected) {
  std::vector<float> got = t.to_f32_vector();
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(expected[i]).margin(1e-6));
}

}  // namespace

TEST_CASE("session: linear + relu matches a naive loop for two batch sizes") {
  auto session = make_session(linear_relu_graph());
  CHECK(session->input_names() == std::vector<std::string>{"x"});
  CHECK(session->output_names() == std::vector<std::string>{"y"});
  for (int64_t batch : {1, 4}) {
    std::vector<float> x(static_cast<size_t>(batch * kIn));
    for (size_t i = 0; i < x.size(); ++i) x[i] = 0.3f * static_cast<float>(i) - 1.0f;
    auto out = session->run(std::vector<Tensor>{Tensor::from_vector<float>({batch, kIn}, x)});
    INFO(out.status().message());
    REQUIRE(out.is_ok());
    REQUIRE(out->size() == 1);
    CHECK((*out)[0].shape() == Shape{batch, kOut});
    check_close((*out)[0], naive_linear_relu(x, batch));
  }
}

TEST_CASE("session: -O0, -O1 and an explicit pass list give the same outputs") {
  SessionOptions o0;
  o0.opt_level = 0;
  SessionOptions o1;
  o1.opt_level = 1;
  SessionOptions explicit_list;
  explicit_list.passes = std::vector<std::string>{"canonicalize"};
  auto s0 = make_session(linear_relu_graph(), o0);
  auto s1 = make_session(linear_relu_graph(), o1);
  auto s2 = make_session(linear_relu_graph(), explicit_list);
  CHECK(s0->pass_reports().empty());
  CHECK_FALSE(s1->pass_reports().empty());
  REQUIRE(s2->pass_reports().size() == 1);
  CHECK(s2->pass_reports()[0].pass == "canonicalize");
  CHECK(s1->graph().num_nodes() < s0->graph().num_nodes());  // the Identity is gone

  const std::vector<float> x = {1.0f, -2.0f, 0.5f, 3.0f, 0.0f, -1.0f};
  const std::vector<float> expected = naive_linear_relu(x, 2);
  for (Session* s : {s0.get(), s1.get(), s2.get()}) {
    auto out = s->run(std::map<std::string, Tensor>{{"x", Tensor::from_vector<float>({2, kIn}, x)}});
    INFO(out.status().message());
    REQUIRE(out.is_ok());
    check_close(out->at("y"), expected);
  }
}

TEST_CASE("session: named inputs and outputs") {
  auto session = make_session(two_in_two_out_graph());
  Tensor a = Tensor::from_vector<float>({3}, {1.0f, 2.0f, 3.0f});
  Tensor b = Tensor::from_vector<float>({3}, {10.0f, -1.0f, 0.5f});

  SECTION("outputs by name") {
    auto out = session->run(std::map<std::string, Tensor>{{"b", b}, {"a", a}});  // any order
    INFO(out.status().message());
    REQUIRE(out.is_ok());
    check_close(out->at("sum"), {11.0f, 1.0f, 3.5f});
    check_close(out->at("prod"), {10.0f, -2.0f, 1.5f});
  }
  SECTION("an unknown name is an error listing the expected names") {
    auto out = session->run(std::map<std::string, Tensor>{{"a", a}, {"b", b}, {"c", a}});
    REQUIRE_FALSE(out.is_ok());
    const std::string& msg = out.status().message();
    CHECK(contains(msg, "unknown input 'c'"));
    CHECK(contains(msg, "'a', 'b'"));
  }
  SECTION("a missing name is an error listing the expected names") {
    auto out = session->run(std::map<std::string, Tensor>{{"a", a}});
    REQUIRE_FALSE(out.is_ok());
    const std::string& msg = out.status().message();
    CHECK(contains(msg, "missing input 'b'"));
    CHECK(contains(msg, "'a', 'b'"));
  }
  SECTION("a wrong count by position is an error") {
    auto out = session->run(std::vector<Tensor>{a});
    REQUIRE_FALSE(out.is_ok());
    CHECK(contains(out.status().message(), "expects 2 inputs"));
  }
}

TEST_CASE("session: wrong dtype, rank, static dim or symbol binding names the input") {
  auto linear = make_session(linear_relu_graph());
  SECTION("dtype") {
    auto out = linear->run(std::vector<Tensor>{Tensor::from_vector<int32_t>({1, kIn}, {1, 2, 3})});
    REQUIRE_FALSE(out.is_ok());
    CHECK(contains(out.status().message(), "input 'x'"));
    CHECK(contains(out.status().message(), "dtype f32"));
  }
  SECTION("rank") {
    auto out = linear->run(std::vector<Tensor>{Tensor::from_vector<float>({kIn}, {1, 2, 3})});
    REQUIRE_FALSE(out.is_ok());
    CHECK(contains(out.status().message(), "input 'x'"));
    CHECK(contains(out.status().message(), "rank 2"));
  }
  SECTION("static dim") {
    auto out = linear->run(std::vector<Tensor>{Tensor::empty(DType::f32, {2, kIn + 1})});
    REQUIRE_FALSE(out.is_ok());
    CHECK(contains(out.status().message(), "input 'x'"));
    CHECK(contains(out.status().message(), "dim 1 must be 3"));
  }
  SECTION("a symbol bound to two sizes") {
    auto pair = make_session(two_in_two_out_graph());
    auto out = pair->run(std::map<std::string, Tensor>{{"a", Tensor::empty(DType::f32, {3})},
                                                       {"b", Tensor::empty(DType::f32, {4})}});
    REQUIRE_FALSE(out.is_ok());
    CHECK(contains(out.status().message(), "input 'b'"));
    CHECK(contains(out.status().message(), "'n'"));
  }
}

TEST_CASE("session: check_finite names the node that produced a non-finite value") {
  auto make_graph = [] {
    auto g = std::make_unique<Graph>("div");
    Value* x = g->add_input("x", TensorType(DType::f32, {Dim(2)}));
    Value* y = g->add_input("y", TensorType(DType::f32, {Dim(2)}));
    Node* div = g->add_node("Div", {x, y}, 1, {}, {"q"});
    div->set_name("divide");
    g->set_outputs({div->output(0)});
    return g;
  };
  std::vector<Tensor> inputs = {Tensor::from_vector<float>({2}, {1.0f, 2.0f}),
                                Tensor::from_vector<float>({2}, {0.0f, 4.0f})};
  auto plain = make_session(make_graph());
  auto out = plain->run(inputs);
  REQUIRE(out.is_ok());
  CHECK(std::isinf((*out)[0].data<float>()[0]));
  CHECK((*out)[0].data<float>()[1] == 0.5f);

  SessionOptions checked;
  checked.check_finite = true;
  auto strict = make_session(make_graph(), checked);
  auto bad = strict->run(inputs);
  REQUIRE_FALSE(bad.is_ok());
  CHECK(contains(bad.status().message(), "divide"));
}

TEST_CASE("session: construction errors") {
  SECTION("null graph") {
    CHECK_FALSE(Session::from_graph(nullptr).is_ok());
  }
  SECTION("unknown pass") {
    SessionOptions options;
    options.passes = std::vector<std::string>{"no-such-pass"};
    auto s = Session::from_graph(linear_relu_graph(), options);
    REQUIRE_FALSE(s.is_ok());
    CHECK(contains(s.status().message(), "unknown pass 'no-such-pass'"));
  }
  SECTION("unknown op") {
    auto g = std::make_unique<Graph>("bad");
    Value* x = g->add_input("x", TensorType(DType::f32, {Dim(2)}));
    Node* n = g->add_node("NoSuchOp", {x}, 1, {}, {"y"});
    g->set_outputs({n->output(0)});
    auto s = Session::from_graph(std::move(g));
    REQUIRE_FALSE(s.is_ok());
    CHECK(contains(s.status().message(), "NoSuchOp"));
  }
  SECTION("a missing model file is named") {
    auto s = Session::load("/nonexistent/dir/model.seqrun");
    REQUIRE_FALSE(s.is_ok());
    CHECK(contains(s.status().message(), "/nonexistent/dir/model.seqrun"));
  }
}

TEST_CASE("session: f16 inputs run through the f32 kernels and come back as f16") {
  auto g = std::make_unique<Graph>("half");
  Value* a = g->add_input("a", TensorType(DType::f16, {Dim(3)}));
  Value* b = g->add_input("b", TensorType(DType::f16, {Dim(3)}));
  Node* add = g->add_node("Add", {a, b}, 1, {}, {"c"});
  g->set_outputs({add->output(0)});
  auto session = make_session(std::move(g));
  // 1.5 + 0.25, -2 + 8, 1024 + 1 (exact in f16: 1025 needs 11 significant bits).
  Tensor ta = Tensor::from_vector<float>({3}, {1.5f, -2.0f, 1024.0f}).cast(DType::f16);
  Tensor tb = Tensor::from_vector<float>({3}, {0.25f, 8.0f, 1.0f}).cast(DType::f16);
  auto out = session->run(std::vector<Tensor>{ta, tb});
  INFO(out.status().message());
  REQUIRE(out.is_ok());
  CHECK((*out)[0].dtype() == DType::f16);
  CHECK((*out)[0].to_f32_vector() == std::vector<float>{1.75f, 6.0f, 1025.0f});
}

TEST_CASE("session: load runs a saved .seqrun model and exposes its metadata") {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("seqrun_test_session_" + std::to_string(::getpid()) + ".seqrun"))
                               .string();
  SaveOptions save_options;
  save_options.producer = "test_session";
  save_options.metadata = {{"purpose", "unit test"}};
  auto graph = linear_relu_graph();
  Status saved = save_model(*graph, path, save_options);
  INFO(saved.message());
  REQUIRE(saved.is_ok());
  auto loaded = Session::load(path);
  std::filesystem::remove(path);
  INFO(loaded.status().message());
  REQUIRE(loaded.is_ok());
  Session& session = **loaded;
  CHECK(session.metadata().at("purpose") == "unit test");
  const std::vector<float> x = {0.5f, 1.0f, -1.5f};
  auto out = session.run(std::vector<Tensor>{Tensor::from_vector<float>({1, kIn}, x)});
  INFO(out.status().message());
  REQUIRE(out.is_ok());
  check_close((*out)[0], naive_linear_relu(x, 1));
}
