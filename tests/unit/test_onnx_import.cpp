// ONNX importer: old-opset attribute->input conversions (checked by running against naive loops),
// external data, implicit captures in bodies, error cases, TensorProto files and the conformance runner.
#ifndef ONNX_ML
#define ONNX_ML 1
#endif
#ifndef ONNX_NAMESPACE
#define ONNX_NAMESPACE onnx
#endif
#include <onnx/onnx_pb.h>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/session.h"
#include "tools/export/conformance.h"
#include "tools/export/onnx_import.h"

using namespace seqrun;
namespace fs = std::filesystem;

namespace {

// ---- building ONNX models with the protobuf API ------------------------------------------------

onnx::ModelProto make_model(int opset) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  m.mutable_graph()->set_name("g");
  return m;
}

void set_type(onnx::ValueInfoProto* vi, int elem, const std::vector<int64_t>& dims) {
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem);
  auto* shape = tt->mutable_shape();
  for (int64_t d : dims) {
    auto* dim = shape->add_dim();
    if (d >= 0) {
      dim->set_dim_value(d);
    } else {
      dim->set_dim_param("N");
    }
  }
}

void add_input(onnx::GraphProto* g, const std::string& name, const std::vector<int64_t>& dims,
               int elem = onnx::TensorProto::FLOAT) {
  auto* vi = g->add_input();
  vi->set_name(name);
  set_type(vi, elem, dims);
}

void add_output(onnx::GraphProto* g, const std::string& name) {
  g->add_output()->set_name(name);
}

onnx::NodeProto* add_node(onnx::GraphProto* g, const std::string& op, const std::vector<std::string>& ins,
                          const std::vector<std::string>& outs, const std::string& name = "") {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (const auto& i : ins) n->add_input(i);
  for (const auto& o : outs) n->add_output(o);
  return n;
}

void attr_ints(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

void attr_int(onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

void attr_float(onnx::NodeProto* n, const std::string& name, float v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

void attr_string(onnx::NodeProto* n, const std::string& name, const std::string& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(v);
}

onnx::GraphProto* attr_graph(onnx::NodeProto* n, const std::string& name) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::GRAPH);
  return a->mutable_g();
}

onnx::TensorProto* add_initializer(onnx::GraphProto* g, const std::string& name,
                                   const std::vector<int64_t>& dims, const std::vector<float>& values) {
  auto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  for (float v : values) t->add_float_data(v);
  return t;
}

std::unique_ptr<Graph> import_ok(const onnx::ModelProto& m) {
  auto g = onnx_import::import_onnx_bytes(m.SerializeAsString(), "test.onnx");
  INFO(g.status().message());
  REQUIRE(g.is_ok());
  return std::move(g).value();
}

std::string import_error(const onnx::ModelProto& m) {
  auto g = onnx_import::import_onnx_bytes(m.SerializeAsString(), "test.onnx");
  REQUIRE_FALSE(g.is_ok());
  return g.status().message();
}

std::vector<Tensor> run(std::unique_ptr<Graph> g, const std::vector<Tensor>& inputs) {
  runtime::SessionOptions options;
  options.opt_level = 0;
  auto session = runtime::Session::from_graph(std::move(g), options);
  INFO(session.status().message());
  REQUIRE(session.is_ok());
  auto out = session.value()->run(inputs);
  INFO(out.status().message());
  REQUIRE(out.is_ok());
  return out.value();
}

const Node* only_node(const Graph& g, const std::string& op) {
  const Node* found = nullptr;
  for (const Node* n : g.nodes()) {
    if (n->op() == op) {
      REQUIRE(found == nullptr);
      found = n;
    }
  }
  REQUIRE(found != nullptr);
  return found;
}

std::vector<float> iota_f32(int64_t n, float start = 0.0f, float step = 1.0f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = start + step * static_cast<float>(i);
  return v;
}

void require_close(const Tensor& t, const std::vector<float>& expected, float tol = 1e-5f) {
  REQUIRE(t.numel() == static_cast<int64_t>(expected.size()));
  std::vector<float> got = t.to_f32_vector();
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("element " << i);
    REQUIRE(std::fabs(got[i] - expected[i]) <= tol * (1.0f + std::fabs(expected[i])));
  }
}

struct TempDir {
  fs::path path;
  TempDir() {
    char pattern[] = "/tmp/seqrun_onnx_test_XXXXXX";
    char* made = mkdtemp(pattern);
    REQUIRE(made != nullptr);
    path = made;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out << bytes;
}

}  // namespace

// ---- old-opset conversions ------------------------------------------------------------------------

TEST_CASE("Softmax opset 11 coerces to 2-D at axis: rewritten with Flatten/Reshape") {
  auto m = make_model(11);
  auto* g = m.mutable_graph();
  add_input(g, "x", {2, 3, 4});
  attr_int(add_node(g, "Softmax", {"x"}, {"y"}, "sm"), "axis", 1);
  add_output(g, "y");
  auto graph = import_ok(m);
  CHECK(only_node(*graph, "Flatten")->get_int("axis") == 1);
  CHECK(only_node(*graph, "Softmax")->get_int("axis") == -1);
  CHECK(graph->outputs()[0]->name() == "y");
  CHECK(graph->outputs()[0]->type().to_string() == "f32[2, 3, 4]");

  std::vector<float> x = iota_f32(24, -1.0f, 0.1f);
  auto out = run(std::move(graph), {Tensor::from_vector<float>({2, 3, 4}, x)});
  // Naive: each of the 2 rows of 12 elements is normalized as a whole.
  std::vector<float> expected(24);
  for (int r = 0; r < 2; ++r) {
    double sum = 0;
    for (int i = 0; i < 12; ++i) sum += std::exp(x[r * 12 + i]);
    for (int i = 0; i < 12; ++i) expected[r * 12 + i] = static_cast<float>(std::exp(x[r * 12 + i]) / sum);
  }
  CHECK(out[0].shape() == Shape{2, 3, 4});
  require_close(out[0], expected);
}

TEST_CASE("LogSoftmax opset 9 on the last axis stays one node") {
  auto m = make_model(9);
  auto* g = m.mutable_graph();
  add_input(g, "x", {2, 3});
  add_node(g, "LogSoftmax", {"x"}, {"y"});  // default axis 1 == last axis of a 2-D input
  add_output(g, "y");
  auto graph = import_ok(m);
  CHECK(graph->num_nodes() == 1);
  CHECK(only_node(*graph, "LogSoftmax")->get_int("axis") == -1);
  std::vector<float> x = {1, 2, 3, -1, 0, 1};
  auto out = run(std::move(graph), {Tensor::from_vector<float>({2, 3}, x)});
  std::vector<float> expected(6);
  for (int r = 0; r < 2; ++r) {
    double sum = 0;
    for (int i = 0; i < 3; ++i) sum += std::exp(x[r * 3 + i]);
    for (int i = 0; i < 3; ++i) expected[r * 3 + i] = static_cast<float>(x[r * 3 + i] - std::log(sum));
  }
  require_close(out[0], expected);
}

TEST_CASE("ReduceSum opset 11 and ReduceMean opset 13: axes attribute becomes an input") {
  for (const char* op : {"ReduceSum", "ReduceMean"}) {
    DYNAMIC_SECTION(op) {
      auto m = make_model(std::string(op) == "ReduceSum" ? 11 : 13);
      auto* g = m.mutable_graph();
      add_input(g, "x", {2, 3});
      auto* n = add_node(g, op, {"x"}, {"y"});
      attr_ints(n, "axes", {1});
      attr_int(n, "keepdims", 0);
      add_output(g, "y");
      auto graph = import_ok(m);
      const Node* r = only_node(*graph, op);
      REQUIRE(r->num_inputs() == 2);
      REQUIRE(r->input(1)->is_constant());
      CHECK(r->input(1)->constant().to_i64_vector() == std::vector<int64_t>{1});
      CHECK_FALSE(r->has_attr("axes"));
      auto out = run(std::move(graph), {Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6})});
      bool mean = std::string(op) == "ReduceMean";
      require_close(out[0], mean ? std::vector<float>{2, 5} : std::vector<float>{6, 15});
    }
  }
}

TEST_CASE("Squeeze / Unsqueeze opset 11 axes attributes become inputs") {
  auto m = make_model(11);
  auto* g = m.mutable_graph();
  add_input(g, "x", {3, 1, 2});
  attr_ints(add_node(g, "Squeeze", {"x"}, {"s"}), "axes", {1});
  attr_ints(add_node(g, "Unsqueeze", {"s"}, {"y"}), "axes", {0, 3});
  add_output(g, "y");
  auto graph = import_ok(m);
  CHECK(only_node(*graph, "Squeeze")->input(1)->constant().to_i64_vector() == std::vector<int64_t>{1});
  CHECK(only_node(*graph, "Unsqueeze")->input(1)->constant().to_i64_vector() == std::vector<int64_t>{0, 3});
  auto out = run(std::move(graph), {Tensor::from_vector<float>({3, 1, 2}, iota_f32(6))});
  CHECK(out[0].shape() == Shape{1, 3, 2, 1});
  require_close(out[0], iota_f32(6));
}

TEST_CASE("Split opset 11 split attribute, opset 13 equal split get the newest form") {
  SECTION("opset 11 with split sizes") {
    auto m = make_model(11);
    auto* g = m.mutable_graph();
    add_input(g, "x", {5});
    auto* n = add_node(g, "Split", {"x"}, {"a", "b"});
    attr_ints(n, "split", {2, 3});
    add_output(g, "a");
    add_output(g, "b");
    auto graph = import_ok(m);
    CHECK(only_node(*graph, "Split")->input(1)->constant().to_i64_vector() == std::vector<int64_t>{2, 3});
    auto out = run(std::move(graph), {Tensor::from_vector<float>({5}, {1, 2, 3, 4, 5})});
    require_close(out[0], {1, 2});
    require_close(out[1], {3, 4, 5});
  }
  SECTION("opset 13 without split: num_outputs") {
    auto m = make_model(13);
    auto* g = m.mutable_graph();
    add_input(g, "x", {6});
    add_node(g, "Split", {"x"}, {"a", "b", "c"});
    for (const char* o : {"a", "b", "c"}) add_output(g, o);
    auto graph = import_ok(m);
    CHECK(only_node(*graph, "Split")->get_int("num_outputs") == 3);
    auto out = run(std::move(graph), {Tensor::from_vector<float>({6}, iota_f32(6))});
    require_close(out[2], {4, 5});
  }
}

TEST_CASE("Pad opset 2, Slice opset 9, Clip opset 6, TopK opset 9: attributes become inputs") {
  SECTION("Pad") {
    auto m = make_model(2);
    auto* g = m.mutable_graph();
    add_input(g, "x", {2});
    auto* n = add_node(g, "Pad", {"x"}, {"y"});
    attr_ints(n, "pads", {1, 2});
    attr_float(n, "value", 7.5f);
    add_output(g, "y");
    auto out = run(import_ok(m), {Tensor::from_vector<float>({2}, {1, 2})});
    require_close(out[0], {7.5f, 1, 2, 7.5f, 7.5f});
  }
  SECTION("Slice") {
    auto m = make_model(9);
    auto* g = m.mutable_graph();
    add_input(g, "x", {3, 4});
    auto* n = add_node(g, "Slice", {"x"}, {"y"});
    attr_ints(n, "starts", {1, 0});
    attr_ints(n, "ends", {3, 2});
    add_output(g, "y");
    auto out = run(import_ok(m), {Tensor::from_vector<float>({3, 4}, iota_f32(12))});
    CHECK(out[0].shape() == Shape{2, 2});
    require_close(out[0], {4, 5, 8, 9});
  }
  SECTION("Clip") {
    auto m = make_model(6);
    auto* g = m.mutable_graph();
    add_input(g, "x", {4});
    auto* n = add_node(g, "Clip", {"x"}, {"y"});
    attr_float(n, "min", -1.0f);
    attr_float(n, "max", 2.0f);
    add_output(g, "y");
    auto out = run(import_ok(m), {Tensor::from_vector<float>({4}, {-3, 0.5f, 2.5f, 1})});
    require_close(out[0], {-1, 0.5f, 2, 1});
  }
  SECTION("TopK") {
    auto m = make_model(9);
    auto* g = m.mutable_graph();
    add_input(g, "x", {5});
    attr_int(add_node(g, "TopK", {"x"}, {"v", "i"}), "k", 2);
    add_output(g, "v");
    add_output(g, "i");
    auto out = run(import_ok(m), {Tensor::from_vector<float>({5}, {3, 9, 1, 7, 5})});
    require_close(out[0], {9, 7});
    CHECK(out[1].to_i64_vector() == std::vector<int64_t>{1, 3});
  }
}

TEST_CASE("BatchNormalization opset 7 drops spatial, Dropout opset 10 moves ratio") {
  auto m = make_model(7);
  auto* g = m.mutable_graph();
  add_input(g, "x", {1, 2, 2});
  add_initializer(g, "scale", {2}, {2.0f, 0.5f});
  add_initializer(g, "bias", {2}, {1.0f, -1.0f});
  add_initializer(g, "mean", {2}, {0.5f, 1.0f});
  add_initializer(g, "var", {2}, {4.0f, 0.25f});
  auto* n = add_node(g, "BatchNormalization", {"x", "scale", "bias", "mean", "var"}, {"y"});
  attr_int(n, "spatial", 1);
  attr_float(n, "epsilon", 0.0f);
  attr_float(add_node(g, "Dropout", {"y"}, {"z"}), "ratio", 0.3f);
  add_output(g, "z");
  auto graph = import_ok(m);
  CHECK_FALSE(only_node(*graph, "BatchNormalization")->has_attr("spatial"));
  CHECK(only_node(*graph, "Dropout")->input(1)->constant().get_f64(0) == Approx(0.3));
  std::vector<float> x = {1, 2, 3, 4};
  auto out = run(std::move(graph), {Tensor::from_vector<float>({1, 2, 2}, x)});
  // y = scale * (x - mean) / sqrt(var) + bias per channel; Dropout is the identity at inference.
  require_close(out[0], {2.0f * (1 - 0.5f) / 2 + 1, 2.0f * (2 - 0.5f) / 2 + 1, 0.5f * (3 - 1) / 0.5f - 1,
                         0.5f * (4 - 1) / 0.5f - 1});
}

TEST_CASE("Upsample opset 9 becomes Resize (asymmetric, floor)") {
  auto m = make_model(9);
  auto* g = m.mutable_graph();
  add_input(g, "x", {1, 1, 2, 2});
  add_initializer(g, "scales", {4}, {1, 1, 2, 3});
  attr_string(add_node(g, "Upsample", {"x", "scales"}, {"y"}), "mode", "nearest");
  add_output(g, "y");
  auto graph = import_ok(m);
  const Node* r = only_node(*graph, "Resize");
  CHECK(r->get_string("coordinate_transformation_mode") == "asymmetric");
  CHECK(r->get_string("nearest_mode") == "floor");
  auto out = run(std::move(graph), {Tensor::from_vector<float>({1, 1, 2, 2}, {1, 2, 3, 4})});
  CHECK(out[0].shape() == Shape{1, 1, 4, 6});
  std::vector<float> expected;
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 6; ++j) expected.push_back(static_cast<float>(1 + (i / 2) * 2 + j / 3));
  }
  require_close(out[0], expected);
}

TEST_CASE("Constant node forms become constant values") {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  add_input(g, "x", {3});
  auto* c = add_node(g, "Constant", {}, {"c"});
  auto* a = c->add_attribute();
  a->set_name("value_floats");
  a->set_type(onnx::AttributeProto::FLOATS);
  for (float v : {1.0f, 10.0f, 100.0f}) a->add_floats(v);
  add_node(g, "Mul", {"x", "c"}, {"y"});
  add_output(g, "y");
  auto graph = import_ok(m);
  CHECK(graph->num_nodes() == 1);
  auto out = run(std::move(graph), {Tensor::from_vector<float>({3}, {1, 2, 3})});
  require_close(out[0], {1, 20, 300});
}

TEST_CASE("symbolic dims from dim_param, initializers listed as inputs stay constants") {
  auto m = make_model(13);
  m.set_ir_version(3);
  auto* g = m.mutable_graph();
  add_input(g, "x", {-1, 2});
  add_input(g, "w", {2});
  add_initializer(g, "w", {2}, {10, 20});
  add_node(g, "Add", {"x", "w"}, {"y"});
  add_output(g, "y");
  auto graph = import_ok(m);
  REQUIRE(graph->inputs().size() == 1);
  CHECK(graph->inputs()[0]->type().to_string() == "f32[N, 2]");
  auto out = run(std::move(graph), {Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4})});
  require_close(out[0], {11, 22, 13, 24});
}

// ---- external data ----------------------------------------------------------------------------------

namespace {
onnx::ModelProto external_model(const std::string& location, const std::string& offset,
                                const std::string& length) {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  add_input(g, "x", {3});
  auto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(3);
  w->set_data_location(onnx::TensorProto::EXTERNAL);
  auto add_entry = [&](const std::string& k, const std::string& v) {
    auto* e = w->add_external_data();
    e->set_key(k);
    e->set_value(v);
  };
  add_entry("location", location);
  if (!offset.empty()) add_entry("offset", offset);
  if (!length.empty()) add_entry("length", length);
  add_node(g, "Add", {"x", "w"}, {"y"});
  add_output(g, "y");
  return m;
}

std::string float_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}
}  // namespace

TEST_CASE("external data is read relative to the model's folder") {
  TempDir dir;
  write_file(dir.path / "weights.bin", std::string(16, 'z') + float_bytes({0.5f, 1.5f, 2.5f}));
  write_file(dir.path / "model.onnx", external_model("weights.bin", "16", "12").SerializeAsString());
  auto g = onnx_import::import_onnx_file((dir.path / "model.onnx").string());
  INFO(g.status().message());
  REQUIRE(g.is_ok());
  auto out = run(std::move(g).value(), {Tensor::from_vector<float>({3}, {1, 1, 1})});
  require_close(out[0], {1.5f, 2.5f, 3.5f});
}

TEST_CASE("external data errors: escaping paths, missing and short files, bad lengths") {
  TempDir dir;
  fs::create_directories(dir.path / "sub");
  write_file(dir.path / "outside.bin", float_bytes({1, 2, 3}));
  write_file(dir.path / "sub" / "short.bin", float_bytes({1, 2}));
  write_file(dir.path / "sub" / "ok.bin", float_bytes({1, 2, 3}));
  auto error_for = [&](const onnx::ModelProto& m) {
    write_file(dir.path / "sub" / "model.onnx", m.SerializeAsString());
    auto g = onnx_import::import_onnx_file((dir.path / "sub" / "model.onnx").string());
    REQUIRE_FALSE(g.is_ok());
    return g.status().message();
  };
  CHECK_THAT(error_for(external_model("../outside.bin", "", "")),
             Catch::Contains("leaves the model directory"));
  CHECK_THAT(error_for(external_model((dir.path / "outside.bin").string(), "", "")),
             Catch::Contains("leaves the model directory"));
  CHECK_THAT(error_for(external_model("missing.bin", "", "")), Catch::Contains("does not exist"));
  CHECK_THAT(error_for(external_model("short.bin", "", "")), Catch::Contains("exceeds file size"));
  CHECK_THAT(error_for(external_model("ok.bin", "4", "")), Catch::Contains("exceeds file size"));
  CHECK_THAT(error_for(external_model("ok.bin", "", "8")), Catch::Contains("does not match"));
  CHECK_THAT(error_for(external_model("ok.bin", "-1", "")), Catch::Contains("not a non-negative integer"));
  write_file(dir.path / "sub" / "model.onnx", external_model("ok.bin", "0", "12").SerializeAsString());
  CHECK(onnx_import::import_onnx_file((dir.path / "sub" / "model.onnx").string()).is_ok());
}

// ---- nested graphs and implicit captures -------------------------------------------------------------

namespace {
// Loop body: acc_out = acc_in + bias (bias read from the enclosing graph, not passed explicitly).
void loop_body(onnx::GraphProto* body, const std::string& captured) {
  body->set_name("body");
  add_input(body, "iter", {}, onnx::TensorProto::INT64);
  add_input(body, "cond_in", {}, onnx::TensorProto::BOOL);
  add_input(body, "acc_in", {2});
  add_node(body, "Identity", {"cond_in"}, {"cond_out"});
  add_node(body, "Add", {"acc_in", captured}, {"acc_out"});
  add_output(body, "cond_out");
  add_output(body, "acc_out");
}
}  // namespace

TEST_CASE("Loop body reading an outer value gets a capture") {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  add_input(g, "x", {2});
  add_input(g, "bias", {2});
  auto* trip = g->add_initializer();
  trip->set_name("trip");
  trip->set_data_type(onnx::TensorProto::INT64);
  trip->add_int64_data(3);
  auto* loop = add_node(g, "Loop", {"trip", "", "x"}, {"y"}, "loop");
  loop_body(attr_graph(loop, "body"), "bias");
  add_output(g, "y");
  auto graph = import_ok(m);
  const Node* n = only_node(*graph, "Loop");
  REQUIRE(n->num_captures() == 1);
  CHECK(n->input(n->num_inputs() - 1)->name() == "bias");
  CHECK(n->get_graph("body")->captures().size() == 1);
  auto out = run(std::move(graph),
                 {Tensor::from_vector<float>({2}, {1, 2}), Tensor::from_vector<float>({2}, {0.5f, -1})});
  require_close(out[0], {1 + 3 * 0.5f, 2 - 3 * 1.0f});
}

TEST_CASE("If inside a Loop body: the middle body captures for the inner one; branches share captures") {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  add_input(g, "x", {2});
  add_input(g, "a", {2});
  add_input(g, "b", {2});
  add_input(g, "flag", {}, onnx::TensorProto::BOOL);
  auto* trip = g->add_initializer();
  trip->set_name("trip");
  trip->set_data_type(onnx::TensorProto::INT64);
  trip->add_int64_data(2);
  auto* loop = add_node(g, "Loop", {"trip", "", "x"}, {"y"}, "loop");
  auto* body = attr_graph(loop, "body");
  body->set_name("body");
  add_input(body, "iter", {}, onnx::TensorProto::INT64);
  add_input(body, "cond_in", {}, onnx::TensorProto::BOOL);
  add_input(body, "acc_in", {2});
  add_node(body, "Identity", {"cond_in"}, {"cond_out"});
  auto* iff = add_node(body, "If", {"flag"}, {"delta"}, "choose");
  auto* then_g = attr_graph(iff, "then_branch");
  then_g->set_name("then");
  add_node(then_g, "Identity", {"a"}, {"then_out"});
  add_output(then_g, "then_out");
  auto* else_g = attr_graph(iff, "else_branch");
  else_g->set_name("else");
  add_node(else_g, "Identity", {"b"}, {"else_out"});
  add_output(else_g, "else_out");
  add_node(body, "Add", {"acc_in", "delta"}, {"acc_out"});
  add_output(body, "cond_out");
  add_output(body, "acc_out");
  add_output(g, "y");

  auto graph = import_ok(m);
  const Node* l = only_node(*graph, "Loop");
  REQUIRE(l->num_captures() == 3);  // flag, a, b: everything the body and its branches read
  const Graph* loop_body_graph = l->get_graph("body");
  const Node* inner = only_node(*loop_body_graph, "If");
  REQUIRE(inner->num_captures() == 2);
  const Graph* then_graph = inner->get_graph("then_branch");
  const Graph* else_graph = inner->get_graph("else_branch");
  REQUIRE(then_graph->captures().size() == 2);
  REQUIRE(else_graph->captures().size() == 2);
  CHECK(then_graph->captures()[0]->name() == else_graph->captures()[0]->name());
  CHECK(then_graph->captures()[1]->name() == else_graph->captures()[1]->name());

  Tensor x = Tensor::from_vector<float>({2}, {1, 1});
  Tensor a = Tensor::from_vector<float>({2}, {10, 20});
  Tensor b = Tensor::from_vector<float>({2}, {-1, -2});
  auto graph2 = import_ok(m);
  auto taken = run(std::move(graph), {x, a, b, Tensor::scalar<bool>(true)});
  require_close(taken[0], {21, 41});
  auto not_taken = run(std::move(graph2), {x, a, b, Tensor::scalar<bool>(false)});
  require_close(not_taken[0], {-1, -3});
}

TEST_CASE("Scan opset 8 (batch axis) becomes a Scan over the batch of newest Scans") {
  auto m = make_model(8);
  auto* g = m.mutable_graph();
  add_input(g, "init", {2, 2});
  add_input(g, "xs", {2, 3, 2});
  auto* scan = add_node(g, "Scan", {"", "init", "xs"}, {"final", "partial"}, "scan");
  attr_int(scan, "num_scan_inputs", 1);
  auto* body = attr_graph(scan, "body");
  body->set_name("body");
  add_input(body, "s_in", {2});
  add_input(body, "x_t", {2});
  add_node(body, "Add", {"s_in", "x_t"}, {"s_out"});
  add_node(body, "Identity", {"s_out"}, {"p_out"});
  add_output(body, "s_out");
  add_output(body, "p_out");
  add_output(g, "final");
  add_output(g, "partial");
  std::vector<float> init = {0, 100, 1, 1};
  std::vector<float> xs = iota_f32(12);
  auto out = run(import_ok(m),
                 {Tensor::from_vector<float>({2, 2}, init), Tensor::from_vector<float>({2, 3, 2}, xs)});
  std::vector<float> final_state(4), partial(12);
  for (int b = 0; b < 2; ++b) {
    for (int c = 0; c < 2; ++c) {
      float s = init[b * 2 + c];
      for (int t = 0; t < 3; ++t) {
        s += xs[(b * 3 + t) * 2 + c];
        partial[(b * 3 + t) * 2 + c] = s;
      }
      final_state[b * 2 + c] = s;
    }
  }
  CHECK(out[0].shape() == Shape{2, 2});
  CHECK(out[1].shape() == Shape{2, 3, 2});
  require_close(out[0], final_state);
  require_close(out[1], partial);
}

// ---- error cases -------------------------------------------------------------------------------------

TEST_CASE("unsupported ops, domains and dtypes are one clear error") {
  SECTION("unknown op") {
    auto m = make_model(13);
    add_input(m.mutable_graph(), "x", {2});
    add_node(m.mutable_graph(), "FooBar", {"x"}, {"y"}, "weird");
    add_output(m.mutable_graph(), "y");
    CHECK(import_error(m) == "test.onnx: node 'weird' (#0): unsupported op ai.onnx::FooBar (opset 13)");
  }
  SECTION("unknown domain") {
    auto m = make_model(13);
    auto* op = m.add_opset_import();
    op->set_domain("com.microsoft");
    op->set_version(1);
    add_input(m.mutable_graph(), "x", {2});
    add_node(m.mutable_graph(), "FusedGemm", {"x"}, {"y"}, "ms")->set_domain("com.microsoft");
    add_output(m.mutable_graph(), "y");
    CHECK(import_error(m) == "test.onnx: node 'ms' (#0): unsupported op com.microsoft::FusedGemm (opset 1)");
  }
  SECTION("opset newer than known") {
    auto m = make_model(99);
    add_input(m.mutable_graph(), "x", {2});
    add_node(m.mutable_graph(), "Relu", {"x"}, {"y"}, "r");
    add_output(m.mutable_graph(), "y");
    CHECK_THAT(import_error(m),
               Catch::StartsWith("test.onnx: node 'r' (#0): unsupported op ai.onnx::Relu (opset 99)"));
  }
  SECTION("string input") {
    auto m = make_model(13);
    add_input(m.mutable_graph(), "s", {2}, onnx::TensorProto::STRING);
    add_node(m.mutable_graph(), "Identity", {"s"}, {"y"});
    add_output(m.mutable_graph(), "y");
    CHECK(import_error(m) == "test.onnx: input 's': unsupported dtype STRING");
  }
  SECTION("string constant") {
    auto m = make_model(13);
    auto* c = add_node(m.mutable_graph(), "Constant", {}, {"y"}, "c");
    attr_string(c, "value_string", "hello");
    add_output(m.mutable_graph(), "y");
    CHECK(import_error(m) == "test.onnx: node 'c' (#0): unsupported dtype STRING in Constant");
  }
  SECTION("sequence-typed input") {
    auto m = make_model(13);
    auto* vi = m.mutable_graph()->add_input();
    vi->set_name("seq");
    vi->mutable_type()->mutable_sequence_type()->mutable_elem_type()->mutable_tensor_type()->set_elem_type(1);
    add_node(m.mutable_graph(), "SequenceLength", {"seq"}, {"n"});
    add_output(m.mutable_graph(), "n");
    CHECK(import_error(m) == "test.onnx: input 'seq': unsupported type sequence");
  }
  SECTION("undefined input name") {
    auto m = make_model(13);
    add_node(m.mutable_graph(), "Relu", {"nowhere"}, {"y"}, "r");
    add_output(m.mutable_graph(), "y");
    CHECK_THAT(import_error(m), Catch::Contains("input 'nowhere' is not defined"));
  }
}

TEST_CASE("truncated and garbage files are errors, never crashes") {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  add_input(g, "x", {64});
  add_initializer(g, "w", {64}, iota_f32(64));
  add_node(g, "Add", {"x", "w"}, {"y"});
  add_output(g, "y");
  std::string bytes = m.SerializeAsString();
  TempDir dir;
  for (size_t cut : {bytes.size() / 2, bytes.size() - 1, size_t{1}, size_t{0}}) {
    write_file(dir.path / "model.onnx", bytes.substr(0, cut));
    auto r = onnx_import::import_onnx_file((dir.path / "model.onnx").string());
    INFO("cut at " << cut);
    CHECK_FALSE(r.is_ok());
  }
  std::string garbage;
  uint32_t state = 12345;
  for (int i = 0; i < 4096; ++i) {
    state = state * 1664525u + 1013904223u;
    garbage.push_back(static_cast<char>(state >> 24));
  }
  write_file(dir.path / "model.onnx", garbage);
  CHECK_FALSE(onnx_import::import_onnx_file((dir.path / "model.onnx").string()).is_ok());
  CHECK_THAT(onnx_import::import_onnx_file((dir.path / "nope.onnx").string()).status().message(),
             Catch::Contains("cannot open"));
}

TEST_CASE("tensor data sizes are checked against the dims") {
  SECTION("raw_data too short") {
    auto m = make_model(13);
    auto* g = m.mutable_graph();
    add_input(g, "x", {3});
    auto* w = g->add_initializer();
    w->set_name("w");
    w->set_data_type(onnx::TensorProto::FLOAT);
    w->add_dims(3);
    w->set_raw_data(std::string(8, '\0'));
    add_node(g, "Add", {"x", "w"}, {"y"});
    add_output(g, "y");
    CHECK(import_error(m) == "test.onnx: initializer 'w': raw_data has 8 bytes, dims [3] of f32 need 12");
  }
  SECTION("typed field count") {
    auto m = make_model(13);
    auto* g = m.mutable_graph();
    add_input(g, "x", {3});
    add_initializer(g, "w", {3}, {1, 2});
    add_node(g, "Add", {"x", "w"}, {"y"});
    add_output(g, "y");
    CHECK_THAT(import_error(m), Catch::Contains("float_data has 2 values, dims [3] need 3"));
  }
  SECTION("hostile dims") {
    auto m = make_model(13);
    auto* g = m.mutable_graph();
    add_input(g, "x", {3});
    auto* w = add_initializer(g, "w", {}, {});
    for (int i = 0; i < 8; ++i) w->add_dims(int64_t{1} << 40);
    add_node(g, "Add", {"x", "w"}, {"y"});
    add_output(g, "y");
    CHECK_THAT(import_error(m), Catch::Contains("initializer 'w'"));
    w->clear_dims();
    w->add_dims(-3);
    CHECK_THAT(import_error(m), Catch::Contains("negative dimension"));
    // 1 TiB of f32 claimed, no data: rejected before anything is allocated.
    w->clear_dims();
    w->add_dims(int64_t{1} << 20);
    w->add_dims(int64_t{1} << 18);
    CHECK_THAT(import_error(m), Catch::Contains("float_data has 0 values"));
  }
}

TEST_CASE("read_tensor_proto_file reads typed and raw fields") {
  TempDir dir;
  onnx::TensorProto t;
  t.set_name("half");
  t.set_data_type(onnx::TensorProto::FLOAT16);
  t.add_dims(2);
  t.add_int32_data(0x3c00);  // 1.0
  t.add_int32_data(0xc000);  // -2.0
  write_file(dir.path / "input_0.pb", t.SerializeAsString());
  std::string name;
  auto r = onnx_import::read_tensor_proto_file((dir.path / "input_0.pb").string(), &name);
  REQUIRE(r.is_ok());
  CHECK(name == "half");
  CHECK(r.value().dtype() == DType::f16);
  CHECK(r.value().to_f32_vector() == std::vector<float>{1.0f, -2.0f});

  onnx::TensorProto b;
  b.set_data_type(onnx::TensorProto::BOOL);
  b.add_dims(3);
  b.set_raw_data(std::string("\x01\x00\x01", 3));
  write_file(dir.path / "input_1.pb", b.SerializeAsString());
  auto rb = onnx_import::read_tensor_proto_file((dir.path / "input_1.pb").string());
  REQUIRE(rb.is_ok());
  CHECK(rb.value().to_i64_vector() == std::vector<int64_t>{1, 0, 1});
  write_file(dir.path / "bad.pb", "\xff\xff\xff");
  CHECK_FALSE(onnx_import::read_tensor_proto_file((dir.path / "bad.pb").string()).is_ok());
}

TEST_CASE("typed data fields of every dtype") {
  TempDir dir;
  auto read_back = [&](const onnx::TensorProto& t) {
    write_file(dir.path / "t.pb", t.SerializeAsString());
    auto r = onnx_import::read_tensor_proto_file((dir.path / "t.pb").string());
    INFO(r.status().message());
    REQUIRE(r.is_ok());
    return r.value();
  };
  auto int32_tensor = [](int type, const std::vector<int32_t>& v) {
    onnx::TensorProto t;
    t.set_data_type(type);
    t.add_dims(static_cast<int64_t>(v.size()));
    for (int32_t x : v) t.add_int32_data(x);
    return t;
  };
  Tensor i8 = read_back(int32_tensor(onnx::TensorProto::INT8, {-128, 5, 127}));
  CHECK(i8.dtype() == DType::i8);
  CHECK(i8.to_i64_vector() == std::vector<int64_t>{-128, 5, 127});
  Tensor u8 = read_back(int32_tensor(onnx::TensorProto::UINT8, {0, 200, 255}));
  CHECK(u8.to_i64_vector() == std::vector<int64_t>{0, 200, 255});
  Tensor i16 = read_back(int32_tensor(onnx::TensorProto::INT16, {-30000, 7}));
  CHECK(i16.to_i64_vector() == std::vector<int64_t>{-30000, 7});
  Tensor u16 = read_back(int32_tensor(onnx::TensorProto::UINT16, {65535, 1}));
  CHECK(u16.to_i64_vector() == std::vector<int64_t>{65535, 1});
  Tensor b = read_back(int32_tensor(onnx::TensorProto::BOOL, {0, 1, 7}));
  CHECK(b.dtype() == DType::boolean);
  CHECK(b.to_i64_vector() == std::vector<int64_t>{0, 1, 1});
  Tensor bf = read_back(int32_tensor(onnx::TensorProto::BFLOAT16, {0x3f80, 0xc040}));  // 1.0, -3.0
  CHECK(bf.dtype() == DType::bf16);
  CHECK(bf.to_f32_vector() == std::vector<float>{1.0f, -3.0f});
  Tensor i32 = read_back(int32_tensor(onnx::TensorProto::INT32, {-5, 1 << 30}));
  CHECK(i32.to_i64_vector() == std::vector<int64_t>{-5, 1 << 30});

  onnx::TensorProto d;
  d.set_data_type(onnx::TensorProto::DOUBLE);
  d.add_dims(2);
  d.add_double_data(0.1);
  d.add_double_data(-2.5);
  Tensor f64 = read_back(d);
  CHECK(f64.dtype() == DType::f64);
  CHECK(f64.get_f64(0) == 0.1);
  CHECK(f64.get_f64(1) == -2.5);

  onnx::TensorProto u;
  u.set_data_type(onnx::TensorProto::UINT64);
  u.add_uint64_data(uint64_t{1} << 40);
  Tensor u64 = read_back(u);  // no dims: a scalar
  CHECK(u64.dtype() == DType::u64);
  CHECK(u64.rank() == 0);
  CHECK(u64.data<uint64_t>()[0] == uint64_t{1} << 40);
  u.set_data_type(onnx::TensorProto::UINT32);
  u.clear_uint64_data();
  u.add_uint64_data(4000000000u);
  CHECK(read_back(u).data<uint32_t>()[0] == 4000000000u);

  onnx::TensorProto l;
  l.set_data_type(onnx::TensorProto::INT64);
  l.add_dims(0);
  Tensor empty = read_back(l);
  CHECK(empty.shape() == Shape{0});

  onnx::TensorProto c;
  c.set_data_type(onnx::TensorProto::COMPLEX64);
  c.add_dims(1);
  c.add_float_data(1);
  c.add_float_data(2);
  write_file(dir.path / "c.pb", c.SerializeAsString());
  CHECK_THAT(onnx_import::read_tensor_proto_file((dir.path / "c.pb").string()).status().message(),
             Catch::Contains("unsupported dtype COMPLEX64"));
}

// ---- conformance runner -------------------------------------------------------------------------------

TEST_CASE("compare_tensors: tolerances, NaN and infinities, exact integers") {
  using conformance::compare_tensors;
  const float inf = INFINITY;
  const float nan = NAN;
  auto f32 = [](std::vector<float> v) {
    return Tensor::from_vector<float>({static_cast<int64_t>(v.size())}, v);
  };
  CHECK(compare_tensors(f32({1.0f, 100.0f}), f32({1.0f + 5e-6f, 100.05f})).empty());
  CHECK_FALSE(compare_tensors(f32({1.0f}), f32({1.01f})).empty());
  CHECK(compare_tensors(f32({nan, inf, -inf}), f32({nan, inf, -inf})).empty());
  CHECK_FALSE(compare_tensors(f32({inf}), f32({-inf})).empty());
  CHECK_FALSE(compare_tensors(f32({nan}), f32({0})).empty());
  CHECK_FALSE(compare_tensors(f32({1, 2}), Tensor::from_vector<float>({1, 2}, {1, 2})).empty());
  CHECK_FALSE(compare_tensors(f32({1}), Tensor::from_vector<double>({1}, {1})).empty());
  Tensor h = f32({1.0f}).cast(DType::f16);
  CHECK(compare_tensors(f32({1.005f}).cast(DType::f16), h).empty());  // f16: rtol 1e-2
  CHECK(compare_tensors(Tensor::from_vector<int64_t>({2}, {3, 4}), Tensor::from_vector<int64_t>({2}, {3, 4}))
            .empty());
  CHECK_FALSE(
      compare_tensors(Tensor::from_vector<int64_t>({2}, {3, 4}), Tensor::from_vector<int64_t>({2}, {3, 5}))
          .empty());
}

namespace {
// Writes an ONNX backend test folder: y = x + 1 with the given expected output.
void write_test(const fs::path& dir, const std::string& op, const std::vector<float>& expected) {
  fs::create_directories(dir / "test_data_set_0");
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  add_input(g, "x", {2});
  add_initializer(g, "one", {}, {1.0f});
  add_node(g, op, {"x", "one"}, {"y"});
  add_output(g, "y");
  write_file(dir / "model.onnx", m.SerializeAsString());
  onnx::TensorProto in;
  in.set_name("x");
  in.set_data_type(onnx::TensorProto::FLOAT);
  in.add_dims(2);
  in.add_float_data(1);
  in.add_float_data(2);
  write_file(dir / "test_data_set_0" / "input_0.pb", in.SerializeAsString());
  onnx::TensorProto out;
  out.set_name("y");
  out.set_data_type(onnx::TensorProto::FLOAT);
  out.add_dims(2);
  for (float v : expected) out.add_float_data(v);
  write_file(dir / "test_data_set_0" / "output_0.pb", out.SerializeAsString());
}
}  // namespace

TEST_CASE("run_conformance: PASS, FAIL, SKIP (excluded and unsupported) and the summary line") {
  TempDir dir;
  write_test(dir.path / "test_a_pass", "Add", {2, 3});
  write_test(dir.path / "test_b_fail", "Add", {2, 4});
  write_test(dir.path / "test_c_excluded", "Add", {0, 0});
  write_test(dir.path / "test_d_unsupported", "NoSuchOp", {2, 3});
  write_file(dir.path / "exclude.txt", "# comment\n\ntest_c_excluded   # known bad data\n");
  conformance::CheckOptions options;
  auto excluded = conformance::read_exclude_file((dir.path / "exclude.txt").string());
  REQUIRE(excluded.is_ok());
  options.excluded = excluded.value();
  options.skip_unsupported = true;
  std::ostringstream log;
  auto summary = conformance::run_conformance({dir.path.string()}, options, &log);
  REQUIRE(summary.is_ok());
  const auto& r = summary.value().results;
  REQUIRE(r.size() == 4);
  CHECK(conformance::format_result(r[0]) == "PASS test_a_pass ops: Add=1");
  CHECK(r[1].outcome == conformance::Outcome::Fail);
  CHECK_THAT(r[1].reason, Catch::Contains("output 0 'y'"));
  CHECK(conformance::format_result(r[2]) == "SKIP test_c_excluded (excluded: known bad data)");
  CHECK(r[3].outcome == conformance::Outcome::Skip);
  CHECK_THAT(r[3].reason, Catch::StartsWith("unsupported: "));
  CHECK(conformance::format_summary(summary.value()) == "1 passed, 1 failed, 2 skipped");
  CHECK_FALSE(summary.value().ok());

  options.skip_unsupported = false;
  auto single = conformance::run_test((dir.path / "test_d_unsupported").string(), options);
  CHECK(single.outcome == conformance::Outcome::Error);
}
