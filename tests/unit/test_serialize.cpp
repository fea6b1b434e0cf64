// .seqrun save/load: every IR feature round-trips, weights load as zero-copy views of the mapping,
// saves are atomic, and hostile files (one test per class of damage) are rejected with one error line
// that names the part at fault.
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ir/op_schema.h"
#include "ir/seqrun_generated.h"
#include "ir/serialize.h"
#include "ir/text.h"
#include "ir/verify.h"

using namespace seqrun;

namespace {

// ---- files and mappings ------------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/seqrun_serialize_XXXXXX";
    const char* made = mkdtemp(pattern);
    REQUIRE(made != nullptr);
    path_ = std::filesystem::canonical(made).string();
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

struct AddressRange {
  uintptr_t begin;
  uintptr_t end;
};

// The address ranges at which `path` is mapped into this process (from /proc/self/maps).
std::vector<AddressRange> mappings_of(const std::string& path) {
  std::vector<AddressRange> out;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    size_t slash = line.find('/');
    if (slash == std::string::npos || line.substr(slash) != path) continue;
    unsigned long begin = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &begin, &end) == 2) out.push_back({begin, end});
  }
  return out;
}

bool lies_within(const void* data, size_t bytes, const std::vector<AddressRange>& ranges) {
  auto p = reinterpret_cast<uintptr_t>(data);
  for (const AddressRange& r : ranges) {
    if (p >= r.begin && p + bytes <= r.end) return true;
  }
  return false;
}

uint32_t le32(const std::string& b, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[at + i]);
  return v;
}

uint64_t le64(const std::string& b, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[at + i]);
  return v;
}

void put32(std::string& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<char>(v >> (8 * i));
}

void put64(std::string& b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = static_cast<char>(v >> (8 * i));
}

Status load_bytes(const std::string& bytes) {
  auto r = load_model_from_memory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "m.seqrun",
                                  nullptr);
  return r.is_ok() ? Status::ok() : r.status();
}

// Loading must fail with one line "m.seqrun: ..." containing every fragment.
void expect_rejected(const std::string& bytes, const std::vector<std::string>& fragments) {
  Status st = load_bytes(bytes);
  REQUIRE_FALSE(st.is_ok());
  INFO(st.message());
  CHECK(st.message().rfind("m.seqrun: ", 0) == 0);
  CHECK(st.message().find('\n') == std::string::npos);
  for (const std::string& f : fragments) CHECK_THAT(st.message(), Catch::Contains(f));
}

// ---- the round-trip graph ----------------------------------------------------------------------

Tensor f16_tensor(Shape shape, const std::vector<float>& values) {
  std::vector<half_t> h;
  for (float v : values) h.push_back({f32_to_f16(v)});
  return Tensor::from_vector<half_t>(std::move(shape), h);
}

Tensor bf16_tensor(Shape shape, const std::vector<float>& values) {
  std::vector<bfloat16_t> h;
  for (float v : values) h.push_back({f32_to_bf16(v)});
  return Tensor::from_vector<bfloat16_t>(std::move(shape), h);
}

// A branch body: reads its one capture, optionally adds a constant of its own, applies `op`.
std::shared_ptr<Graph> make_branch(const std::string& name, const std::string& op, const TensorType& type,
                                   bool with_constant) {
  auto body = std::make_shared<Graph>(name);
  Value* in = body->add_capture("c", type);
  if (with_constant) {
    Value* k = body->add_constant("k", Tensor::from_vector<float>({4}, {1.5f, -2.0f, 0.25f, 8.0f}));
    Node* add = body->add_node("Add", {in, k}, 1, {}, {"c_plus_k"});
    body->set_value_type(add->output(0), type);
    in = add->output(0);
  }
  Node* n = body->add_node(op, {in}, 1, {}, {name + "_out"});
  body->set_value_type(n->output(0), type);
  body->set_outputs({n->output(0)});
  return body;
}

// A placeholder of a given attribute type (for a registered op's required attributes).
Attribute placeholder(AttrType t) {
  switch (t) {
    case AttrType::Int:
      return Attribute(int64_t{0});
    case AttrType::Float:
      return Attribute(0.0f);
    case AttrType::String:
      return Attribute(std::string());
    case AttrType::Ints:
      return Attribute(std::vector<int64_t>{});
    case AttrType::Floats:
      return Attribute(std::vector<float>{});
    case AttrType::Strings:
      return Attribute(std::vector<std::string>{});
    case AttrType::Tensor:
      return Attribute(Tensor::scalar<float>(0.0f));
    case AttrType::Graph:
      return Attribute(std::make_shared<Graph>("empty"));
  }
  return Attribute();
}

// Adds a node of some registered op that takes an attribute of type `t`, with `value` in it; false
// when no registered op takes one (no schema has floats or strings attributes yet).
bool add_node_with_attr_type(Graph& g, AttrType t, Attribute value, Value* x, const std::string& out_name) {
  const OpRegistry& reg = OpRegistry::global();
  for (const std::string& op : reg.op_names()) {
    const OpSchema* s = reg.find(op);
    for (const AttrSpec& spec : s->attrs) {
      if (spec.type != t) continue;
      std::map<std::string, Attribute> attrs;
      for (const AttrSpec& other : s->attrs) {
        if (other.required) attrs[other.name] = placeholder(other.type);
      }
      attrs[spec.name] = value;
      std::vector<Value*> inputs(static_cast<size_t>(s->min_inputs), x);
      Node* n = g.add_node(op, inputs, s->min_outputs, attrs, {out_name});
      for (Value* out : n->outputs()) g.set_value_type(out, TensorType::unknown_rank(DType::f32));
      if (n->num_outputs() > 0) g.add_output(n->output(0));
      return true;
    }
  }
  return false;
}

// Every feature the file must carry: symbolic/unknown dims and unknown rank, constants of many dtypes
// (an empty and a scalar one too), an absent optional input, a two-output node, every attribute type
// the registry offers, and If bodies nested two deep with captures and constants of their own.
std::unique_ptr<Graph> make_rich_graph() {
  auto g = std::make_unique<Graph>("main");
  TensorType xt(DType::f32, {Dim::symbol("batch"), Dim::symbol("seq"), Dim(4)});
  Value* x = g->add_input("x", xt);
  g->add_input("y", TensorType::unknown_rank(DType::f16));
  Value* cond = g->add_input("cond", TensorType(DType::boolean, {}));
  Value* shape = g->add_input("shape", TensorType(DType::i64, {Dim::unknown()}));

  std::vector<float> w_values;
  for (int i = 0; i < 16; ++i) w_values.push_back(0.5f * static_cast<float>(i) - 3.0f);
  Value* w = g->add_constant("w", Tensor::from_vector<float>({4, 4}, w_values));
  g->add_constant("b16", f16_tensor({4}, {1.0f, -0.5f, 2.25f, 65504.0f}));
  g->add_constant("bf", bf16_tensor({2}, {3.0f, -1.0f}));
  Value* k = g->add_constant("k", Tensor::from_vector<int64_t>({1}, {2}));
  g->add_constant("i64s", Tensor::from_vector<int64_t>({3}, {1, -2, int64_t{1} << 40}));
  g->add_constant("i32s", Tensor::from_vector<int32_t>({2, 2}, {7, -8, 9, -10}));
  g->add_constant("i16s", Tensor::from_vector<int16_t>({2}, {-300, 300}));
  g->add_constant("i8s", Tensor::from_vector<int8_t>({3}, {-128, 0, 127}));
  g->add_constant("u8s", Tensor::from_vector<uint8_t>({5}, {0, 1, 2, 254, 255}));
  g->add_constant("u16s", Tensor::from_vector<uint16_t>({1}, {65535}));
  g->add_constant("u32s", Tensor::from_vector<uint32_t>({1}, {4000000000u}));
  g->add_constant("u64s", Tensor::from_vector<uint64_t>({1}, {~uint64_t{0}}));
  g->add_constant("f64s", Tensor::from_vector<double>({2}, {0.1, -1e300}));
  g->add_constant("flags", Tensor::from_vector<bool>({2}, {true, false}));
  g->add_constant("empty", Tensor::from_vector<float>({0, 3}, {}));
  Value* max_bound = g->add_constant("onnx::Clip max", Tensor::scalar<float>(6.0f));

  Node* mm = g->add_node("MatMul", {x, w}, 1, {}, {"mm"});
  mm->set_name("matmul0");
  g->set_value_type(mm->output(0), xt);
  Node* sm = g->add_node("Softmax", {mm->output(0)}, 1, {{"axis", int64_t{-1}}}, {"sm"});
  g->set_value_type(sm->output(0), xt);
  Node* elu = g->add_node("Elu", {sm->output(0)}, 1, {{"alpha", 0.25f}}, {"elu"});
  g->set_value_type(elu->output(0), xt);
  Node* gelu = g->add_node("Gelu", {elu->output(0)}, 1, {{"approximate", "tanh"}}, {"gelu"});
  gelu->set_name("act/gelu");
  g->set_value_type(gelu->output(0), xt);
  Node* tr =
      g->add_node("Transpose", {gelu->output(0)}, 1, {{"perm", std::vector<int64_t>{1, 0, 2}}}, {"tr"});
  g->set_value_type(tr->output(0),
                    TensorType(DType::f32, {Dim::symbol("seq"), Dim::symbol("batch"), Dim(4)}));
  Node* clip = g->add_node("Clip", {x, nullptr, max_bound}, 1, {}, {"clipped"});
  g->set_value_type(clip->output(0), xt);
  Node* fill = g->add_node("ConstantOfShape", {shape}, 1,
                           {{"value", Tensor::from_vector<float>({1}, {3.5f})}}, {"filled"});
  g->set_value_type(fill->output(0), TensorType(DType::f32, {Dim::unknown()}));
  Node* topk = g->add_node("TopK", {x, k}, 2, {{"axis", int64_t{2}}}, {"top_values", "top_indices"});
  g->set_value_type(topk->output(0),
                    TensorType(DType::f32, {Dim::symbol("batch"), Dim::symbol("seq"), Dim(2)}));
  g->set_value_type(topk->output(1),
                    TensorType(DType::i64, {Dim::symbol("batch"), Dim::symbol("seq"), Dim(2)}));

  // then: an inner If (its own constant condition) over the capture; else: Add a constant, then Exp.
  auto then_body = std::make_shared<Graph>("then");
  Value* then_cap = then_body->add_capture("c", xt);
  Value* inner_cond = then_body->add_constant("inner_cond", Tensor::from_vector<bool>({}, {true}));
  Node* inner_if = then_body->add_node("If", {inner_cond, then_cap}, 1,
                                       {{"then_branch", make_branch("inner_then", "Neg", xt, false)},
                                        {"else_branch", make_branch("inner_else", "Exp", xt, true)}},
                                       {"inner_out"});
  inner_if->set_num_captures(1);
  then_body->set_value_type(inner_if->output(0), xt);
  then_body->set_outputs({inner_if->output(0)});
  Node* outer_if = g->add_node(
      "If", {cond, mm->output(0)}, 1,
      {{"then_branch", then_body}, {"else_branch", make_branch("else", "Exp", xt, true)}}, {"branch_out"});
  outer_if->set_num_captures(1);
  outer_if->set_name("choose");
  g->set_value_type(outer_if->output(0), xt);

  g->set_outputs({tr->output(0), clip->output(0), fill->output(0), topk->output(0), topk->output(1),
                  outer_if->output(0)});
  // The registry may have no op with floats or strings attributes: say so once per run.
  static bool warned = false;
  bool floats =
      add_node_with_attr_type(*g, AttrType::Floats, std::vector<float>{0.5f, -1.25f}, x, "floats_node");
  bool strings = add_node_with_attr_type(*g, AttrType::Strings, std::vector<std::string>{"Tanh", "x y"}, x,
                                         "strings_node");
  if (!floats && !warned)
    WARN("no registered op has a floats attribute: floats attributes are not round-tripped");
  if (!strings && !warned)
    WARN("no registered op has a strings attribute: strings attributes are not round-tripped");
  warned = true;
  return g;
}

// ---- structural comparison ---------------------------------------------------------------------

std::string value_name(const Value* v) {
  return v == nullptr ? "<absent>" : v->name();
}

void check_same_tensor(const Tensor& expected, const Tensor& actual) {
  CHECK(expected.dtype() == actual.dtype());
  CHECK(expected.shape() == actual.shape());
  REQUIRE(expected.nbytes() == actual.nbytes());
  if (expected.nbytes() > 0) CHECK(std::memcmp(expected.raw(), actual.raw(), expected.nbytes()) == 0);
}

void check_same_values(const std::vector<Value*>& expected, const std::vector<Value*>& actual) {
  REQUIRE(expected.size() == actual.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    CHECK(expected[i]->name() == actual[i]->name());
    CHECK(expected[i]->role() == actual[i]->role());
    CHECK(expected[i]->type() == actual[i]->type());
  }
}

void check_same_graph(const Graph& expected, const Graph& actual) {
  INFO("graph " << expected.name());
  CHECK(expected.name() == actual.name());
  check_same_values(expected.inputs(), actual.inputs());
  check_same_values(expected.captures(), actual.captures());
  check_same_values(expected.outputs(), actual.outputs());
  check_same_values(expected.constants(), actual.constants());
  for (size_t i = 0; i < expected.constants().size(); ++i) {
    check_same_tensor(expected.constants()[i]->constant(), actual.constants()[i]->constant());
  }
  REQUIRE(expected.num_nodes() == actual.num_nodes());
  for (int i = 0; i < expected.num_nodes(); ++i) {
    const Node* a = expected.nodes()[i];
    const Node* b = actual.nodes()[i];
    INFO("node " << a->describe());
    CHECK(a->op() == b->op());
    CHECK(a->name() == b->name());
    CHECK(b->schema() == OpRegistry::global().find(a->op()));
    CHECK(a->num_captures() == b->num_captures());
    REQUIRE(a->num_inputs() == b->num_inputs());
    for (int j = 0; j < a->num_inputs(); ++j) CHECK(value_name(a->input(j)) == value_name(b->input(j)));
    check_same_values(a->outputs(), b->outputs());
    REQUIRE(a->attrs().size() == b->attrs().size());
    for (const auto& [key, attr] : a->attrs()) {
      INFO("attribute " << key);
      REQUIRE(b->has_attr(key));
      const Attribute& loaded = b->attrs().at(key);
      CHECK(attr.equals(loaded));
      if (attr.type() == AttrType::Graph) check_same_graph(*attr.graph(), *loaded.graph());
      if (attr.type() == AttrType::Tensor) check_same_tensor(attr.tensor(), loaded.tensor());
    }
  }
  std::map<std::string, Value::Role> expected_values, actual_values;
  for (const Value* v : expected.values()) expected_values[v->name()] = v->role();
  for (const Value* v : actual.values()) actual_values[v->name()] = v->role();
  CHECK(expected_values == actual_values);
}

// Every constant and tensor attribute of `g` and its bodies.
void collect_tensors(const Graph& g, std::vector<Tensor>& out) {
  for (const Value* c : g.constants()) out.push_back(c->constant());
  for (const Node* n : g.nodes()) {
    for (const auto& [key, a] : n->attrs()) {
      if (a.type() == AttrType::Tensor) out.push_back(a.tensor());
      if (a.type() == AttrType::Graph) collect_tensors(*a.graph(), out);
    }
  }
}

std::unique_ptr<Graph> make_small_graph(float scale) {
  auto g = std::make_unique<Graph>("small");
  Value* x = g->add_input("x", TensorType(DType::f32, {Dim(3)}));
  Value* w = g->add_constant("w", Tensor::from_vector<float>({3}, {scale, 2 * scale, 3 * scale}));
  Node* add = g->add_node("Add", {x, w}, 1, {}, {"y"});
  g->set_value_type(add->output(0), TensorType(DType::f32, {Dim(3)}));
  g->set_outputs({add->output(0)});
  return g;
}

}  // namespace

// ================================================================================================
// Round trips
// ================================================================================================

TEST_CASE("serialize: every graph feature round-trips through a file") {
  TempDir dir;
  auto g = make_rich_graph();
  REQUIRE(verify_graph(*g).is_ok());
  SaveOptions options;
  options.producer = "test_serialize 1.0";
  options.metadata = {{"arch", "toy"}, {"license", "MIT"}, {"empty", ""}};
  const std::string path = dir.file("rich.seqrun");
  Status saved = save_model(*g, path, options);
  INFO(saved.message());
  REQUIRE(saved.is_ok());
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));

  auto loaded = load_model(path);
  INFO(loaded.status().message());
  REQUIRE(loaded.is_ok());
  CHECK(loaded->producer == "test_serialize 1.0");
  CHECK(loaded->metadata == options.metadata);
  check_same_graph(*g, *loaded->graph);
  CHECK(print_graph(*g) == print_graph(*loaded->graph));
  CHECK(verify_graph(*loaded->graph).is_ok());

  // serialize_model gives the same bytes as the file.
  CHECK(serialize_model(*g, options) == read_file(path));
}

TEST_CASE("serialize: file layout follows ir/seqrun.fbs") {
  auto g = make_rich_graph();
  const std::string bytes = serialize_model(*g);
  REQUIRE(bytes.size() > 16);
  CHECK(bytes.substr(0, 4) == "SEQR");
  CHECK(le32(bytes, 4) == kFormatVersion);
  const uint64_t fb_size = le64(bytes, 8);
  REQUIRE(16 + fb_size <= bytes.size());
  const uint64_t blob_start = (16 + fb_size + 63) / 64 * 64;
  for (uint64_t i = 16 + fb_size; i < blob_start; ++i) CHECK(bytes[i] == 0);

  // Read the tensor table with the generated accessors: every tensor 64-aligned, in bounds, holding
  // exactly the bytes of the graph's constants and tensor attributes (in the writer's order).
  const auto* fb_bytes = reinterpret_cast<const uint8_t*>(bytes.data() + 16);
  flatbuffers::Verifier verifier(fb_bytes, fb_size);
  REQUIRE(fb::VerifyModelBuffer(verifier));
  const fb::Model* model = fb::GetModel(fb_bytes);
  std::vector<Tensor> expected;
  collect_tensors(*g, expected);
  REQUIRE(model->tensors() != nullptr);
  CHECK(model->tensors()->size() == expected.size());
  size_t matched = 0;
  for (const fb::Tensor* t : *model->tensors()) {
    CHECK(t->offset() % 64 == 0);
    REQUIRE(blob_start + t->offset() + t->size() <= bytes.size());
    for (const Tensor& e : expected) {
      if (static_cast<uint8_t>(e.dtype()) == t->dtype() && e.nbytes() == t->size() &&
          (e.nbytes() == 0 ||
           std::memcmp(bytes.data() + blob_start + t->offset(), e.raw(), e.nbytes()) == 0)) {
        ++matched;
        break;
      }
    }
  }
  CHECK(matched == expected.size());
}

TEST_CASE("serialize: constants are zero-copy views into the mapped file, kept alive by tensors") {
  TempDir dir;
  const std::string path = dir.file("views.seqrun");
  auto g = make_rich_graph();
  REQUIRE(save_model(*g, path).is_ok());
  std::vector<Tensor> expected;
  collect_tensors(*g, expected);

  auto loaded = load_model(path);
  REQUIRE(loaded.is_ok());
  std::vector<AddressRange> ranges = mappings_of(path);
  REQUIRE_FALSE(ranges.empty());
  std::vector<Tensor> tensors;
  collect_tensors(*loaded->graph, tensors);
  REQUIRE(tensors.size() == expected.size());
  for (const Tensor& t : tensors) {
    if (t.nbytes() == 0) continue;
    CHECK(lies_within(t.raw(), t.nbytes(), ranges));
    CHECK(reinterpret_cast<uintptr_t>(t.raw()) % 64 == 0);
  }

  // A tensor outlives the graph and keeps the mapping; the last one going unmaps the file.
  Tensor w = loaded->graph->find_value("w")->constant();
  loaded = Result<ModelFile>(Status::error("dropped"));
  CHECK_FALSE(mappings_of(path).empty());
  REQUIRE(w.numel() == 16);
  for (int i = 0; i < 16; ++i) CHECK(w.data<float>()[i] == 0.5f * static_cast<float>(i) - 3.0f);
  tensors.clear();
  w = Tensor();
  CHECK(mappings_of(path).empty());
}

TEST_CASE("serialize: load_model_from_memory reads a buffer, zero-copy when it is 64-byte aligned") {
  auto g = make_rich_graph();
  const std::string bytes = serialize_model(*g);
  REQUIRE_FALSE(bytes.empty());

  auto buffer =
      std::shared_ptr<uint8_t>(static_cast<uint8_t*>(std::aligned_alloc(64, (bytes.size() + 63) / 64 * 64)),
                               [](uint8_t* p) { std::free(p); });
  std::memcpy(buffer.get(), bytes.data(), bytes.size());
  auto loaded = load_model_from_memory(buffer.get(), bytes.size(), "buffer", buffer);
  INFO(loaded.status().message());
  REQUIRE(loaded.is_ok());
  check_same_graph(*g, *loaded->graph);
  const Tensor& w = loaded->graph->find_value("w")->constant();
  const std::vector<AddressRange> whole = {
      {reinterpret_cast<uintptr_t>(buffer.get()), reinterpret_cast<uintptr_t>(buffer.get()) + bytes.size()}};
  CHECK(lies_within(w.raw(), w.nbytes(), whole));

  // Misaligned input still loads (the loader copies it to aligned storage).
  std::string shifted = "x" + bytes;
  auto from_shifted = load_model_from_memory(reinterpret_cast<const uint8_t*>(shifted.data()) + 1,
                                             bytes.size(), "shifted", nullptr);
  REQUIRE(from_shifted.is_ok());
  check_same_graph(*g, *from_shifted->graph);
  CHECK(reinterpret_cast<uintptr_t>(from_shifted->graph->find_value("w")->constant().raw()) % 64 == 0);
}

TEST_CASE("serialize: Loop bodies nested 20 deep round-trip") {
  // Loop bodies nested 20 deep, each level with a constant of its own.
  std::shared_ptr<Graph> body;
  for (int level = 0; level < 20; ++level) {
    auto g = std::make_shared<Graph>("level" + std::to_string(level));
    Value* m = g->add_constant("m", Tensor::scalar<int64_t>(level));
    Value* c = g->add_constant("c", Tensor::from_vector<bool>({}, {true}));
    Node* n = body ? g->add_node("Loop", {m, c}, 1, {{"body", body}}, {"out"})
                   : g->add_node("Neg", {m}, 1, {}, {"out"});
    g->set_outputs({n->output(0)});
    body = g;
  }
  const std::string bytes = serialize_model(*body);
  auto again =
      load_model_from_memory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "deep", nullptr);
  INFO(again.status().message());
  REQUIRE(again.is_ok());
  check_same_graph(*body, *again->graph);
}

TEST_CASE("serialize: an empty last tensor after an unaligned one") {
  Graph g("tail");
  Value* x = g.add_input("x", TensorType(DType::u8, {Dim(3)}));
  Value* a = g.add_constant("a", Tensor::from_vector<uint8_t>({3}, {1, 2, 3}));
  g.add_constant("nothing", Tensor::from_vector<uint8_t>({0}, {}));
  Node* add = g.add_node("Add", {x, a}, 1, {}, {"y"});
  g.set_outputs({add->output(0)});
  const std::string bytes = serialize_model(g);
  const uint64_t blob_start = (16 + le64(bytes, 8) + 63) / 64 * 64;
  CHECK(bytes.size() == blob_start + 64);  // 3 bytes of `a`, padding, then the empty tensor at offset 64
  Status st = load_bytes(bytes);
  INFO(st.message());
  CHECK(st.is_ok());
}

// ================================================================================================
// Saving
// ================================================================================================

TEST_CASE("serialize: a failed save leaves the previous file intact") {
  TempDir dir;
  const std::string path = dir.file("model.seqrun");
  REQUIRE(save_model(*make_small_graph(1.0f), path).is_ok());
  const std::string before = read_file(path);

  // A graph that does not verify is not written.
  Graph bad;
  Value* x = bad.add_input("x", TensorType(DType::f32, {Dim(3)}));
  bad.set_outputs({bad.add_node("Frobnicate", {x}, 1)->output(0)});
  Status st = save_model(bad, path);
  REQUIRE_FALSE(st.is_ok());
  CHECK_THAT(st.message(), Catch::Contains(path));
  CHECK_THAT(st.message(), Catch::Contains("Frobnicate"));
  CHECK(read_file(path) == before);
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));

  // An unwritable destination is an error naming the path.
  Status nowhere = save_model(*make_small_graph(1.0f), dir.file("missing/dir/model.seqrun"));
  REQUIRE_FALSE(nowhere.is_ok());
  CHECK_THAT(nowhere.message(), Catch::Contains("missing/dir/model.seqrun"));

  // Saving over an existing file replaces it completely.
  REQUIRE(save_model(*make_small_graph(10.0f), path).is_ok());
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  auto loaded = load_model(path);
  REQUIRE(loaded.is_ok());
  CHECK(loaded->graph->find_value("w")->constant().to_f32_vector() ==
        std::vector<float>{10.0f, 20.0f, 30.0f});
}

TEST_CASE("serialize: load_model reports files it cannot open") {
  TempDir dir;
  auto missing = load_model(dir.file("nope.seqrun"));
  REQUIRE_FALSE(missing.is_ok());
  CHECK_THAT(missing.status().message(), Catch::Contains("nope.seqrun: cannot open"));
  auto directory = load_model(dir.file(""));
  REQUIRE_FALSE(directory.is_ok());
  CHECK_THAT(directory.status().message(), Catch::Contains("not a regular file"));
  write_file(dir.file("short.seqrun"), "SEQR");
  auto too_short = load_model(dir.file("short.seqrun"));
  REQUIRE_FALSE(too_short.is_ok());
  CHECK(too_short.status().message() ==
        dir.file("short.seqrun") + ": header: file is 4 bytes, shorter than the 16-byte header");
}

// ================================================================================================
// Hostile files. Most are built directly with the generated FlatBuffers API from a small model that
// loads (checked first), changed in one place.
// ================================================================================================

namespace {

struct RawValue {
  std::string name;
  uint8_t role = 0;  // Value::Role
  uint8_t dtype = 1;
  std::vector<int64_t> dims = {2};
  int32_t tensor = -1;
};

struct RawAttr {
  std::string name;
  uint8_t type = 0;  // AttrType
  int64_t i = 0;
  std::string s;
};

struct RawNode {
  std::string op;
  std::string name;
  std::vector<int32_t> inputs;
  std::vector<int32_t> outputs;
  std::vector<RawAttr> attrs;
  int32_t num_captures = 0;
};

struct RawTensor {
  std::string name;
  uint8_t dtype = 1;
  std::vector<int64_t> shape = {2};
  uint64_t offset = 0;
  uint64_t size = 8;
};

struct RawModel {
  std::vector<RawValue> values;
  std::vector<RawNode> nodes;
  std::vector<int32_t> inputs;
  std::vector<int32_t> outputs;
  std::vector<RawTensor> tensors;
  uint64_t blob_bytes = 64;
};

// y = Add(x, w): x an input, w a constant whose bytes are tensor 0 (f32[2]).
RawModel small_model() {
  RawModel m;
  m.values = {{"x", 1}, {"w", 2, 1, {2}, 0}, {"y", 0}};
  m.nodes = {{"Add", "add", {0, 1}, {2}, {}, 0}};
  m.inputs = {0};
  m.outputs = {2};
  m.tensors = {{"w", 1, {2}, 0, 8}};
  return m;
}

// Header + flatbuffer + padding + blob, exactly as the format describes.
std::string frame(const uint8_t* flatbuffer, size_t size, uint64_t blob_bytes) {
  std::string out(16, '\0');
  std::memcpy(&out[0], "SEQR", 4);
  put32(out, 4, kFormatVersion);
  put64(out, 8, size);
  out.append(reinterpret_cast<const char*>(flatbuffer), size);
  out.resize((out.size() + 63) / 64 * 64, '\0');
  for (uint64_t i = 0; i < blob_bytes; ++i) out.push_back(static_cast<char>(i % 251));
  return out;
}

flatbuffers::Offset<fb::Graph> encode_graph(flatbuffers::FlatBufferBuilder& fbb, const RawModel& m) {
  std::vector<flatbuffers::Offset<fb::Value>> values;
  for (const RawValue& v : m.values) {
    std::vector<flatbuffers::Offset<fb::Dim>> dims;
    for (int64_t d : v.dims) dims.push_back(fb::CreateDim(fbb, d));
    auto type = fb::CreateTensorType(fbb, v.dtype, true, fbb.CreateVector(dims));
    values.push_back(fb::CreateValue(fbb, fbb.CreateString(v.name), type, v.role, v.tensor));
  }
  std::vector<flatbuffers::Offset<fb::Node>> nodes;
  for (const RawNode& n : m.nodes) {
    std::vector<flatbuffers::Offset<fb::Attribute>> attrs;
    for (const RawAttr& a : n.attrs) {
      attrs.push_back(
          fb::CreateAttribute(fbb, fbb.CreateString(a.name), a.type, a.i, 0.0f, fbb.CreateString(a.s)));
    }
    nodes.push_back(fb::CreateNode(fbb, fbb.CreateString(n.op), fbb.CreateString(n.name),
                                   fbb.CreateVector(n.inputs), fbb.CreateVector(n.outputs),
                                   fbb.CreateVector(attrs), n.num_captures));
  }
  return fb::CreateGraph(fbb, fbb.CreateString("main"), fbb.CreateVector(values), fbb.CreateVector(nodes),
                         fbb.CreateVector(m.inputs), fbb.CreateVector(m.outputs));
}

std::string encode(const RawModel& m) {
  flatbuffers::FlatBufferBuilder fbb;
  auto graph = encode_graph(fbb, m);
  std::vector<flatbuffers::Offset<fb::Tensor>> tensors;
  for (const RawTensor& t : m.tensors) {
    tensors.push_back(fb::CreateTensor(fbb, fbb.CreateString(t.name), t.dtype, fbb.CreateVector(t.shape),
                                       t.offset, t.size));
  }
  fb::FinishModelBuffer(fbb,
                        fb::CreateModel(fbb, fbb.CreateString("test"), 0, graph, fbb.CreateVector(tensors)));
  return frame(fbb.GetBufferPointer(), fbb.GetSize(), m.blob_bytes);
}

// `levels` graphs, each holding a Loop whose body is the next (the innermost holds a Neg).
std::string encode_nested(int levels) {
  flatbuffers::FlatBufferBuilder fbb;
  flatbuffers::Offset<fb::Graph> inner = 0;
  for (int level = 0; level < levels; ++level) {
    auto type = fb::CreateTensorType(fbb, 1, false);
    std::vector<flatbuffers::Offset<fb::Value>> values = {
        fb::CreateValue(fbb, fbb.CreateString("x"), type, 1),
        fb::CreateValue(fbb, fbb.CreateString("y"), type, 0)};
    std::vector<flatbuffers::Offset<fb::Attribute>> attrs;
    std::vector<int32_t> inputs = {0};
    if (!inner.IsNull()) {
      attrs.push_back(fb::CreateAttribute(fbb, fbb.CreateString("body"), 7, 0, 0.0f, 0, 0, 0, 0, -1, inner));
      inputs = {0, 0};
    }
    std::vector<int32_t> outputs = {1};
    auto node = fb::CreateNode(fbb, fbb.CreateString(inner.IsNull() ? "Neg" : "Loop"), fbb.CreateString(""),
                               fbb.CreateVector(inputs), fbb.CreateVector(outputs), fbb.CreateVector(attrs));
    std::vector<flatbuffers::Offset<fb::Node>> nodes = {node};
    std::vector<int32_t> graph_inputs = {0};
    inner =
        fb::CreateGraph(fbb, fbb.CreateString("g" + std::to_string(level)), fbb.CreateVector(values),
                        fbb.CreateVector(nodes), fbb.CreateVector(graph_inputs), fbb.CreateVector(outputs));
  }
  fb::FinishModelBuffer(fbb, fb::CreateModel(fbb, 0, 0, inner));
  return frame(fbb.GetBufferPointer(), fbb.GetSize(), 0);
}

std::string small_file() {
  return serialize_model(*make_small_graph(1.0f));
}

}  // namespace

TEST_CASE("hostile: the unmodified crafted models load") {
  REQUIRE(load_bytes(small_file()).is_ok());
  Status st = load_bytes(encode(small_model()));
  INFO(st.message());
  REQUIRE(st.is_ok());
  REQUIRE(load_bytes(encode_nested(10)).is_ok());
}

TEST_CASE("hostile: bad magic") {
  std::string bytes = small_file();
  bytes[0] = 'X';
  expect_rejected(bytes, {"m.seqrun: header: bad magic 58 45 51 52"});
}

TEST_CASE("hostile: format version newer than this build") {
  std::string bytes = small_file();
  put32(bytes, 4, kFormatVersion + 1);
  expect_rejected(bytes,
                  {"m.seqrun: header: file has format version 2, newer than this build reads (version 1)"});
  put32(bytes, 4, 0);
  expect_rejected(bytes, {"header: format version 0 is invalid"});
}

TEST_CASE("hostile: truncated at every byte offset") {
  const std::string bytes = small_file();
  REQUIRE(bytes.size() > 64);
  REQUIRE(load_bytes(bytes).is_ok());
  for (size_t length = 0; length < bytes.size(); ++length) {
    INFO("prefix of " << length << " bytes");
    std::string prefix = bytes.substr(0, length);
    Status st = load_bytes(prefix);
    REQUIRE_FALSE(st.is_ok());
    CHECK(st.message().rfind("m.seqrun: ", 0) == 0);
  }
  // The same through the file path (mmap).
  TempDir dir;
  for (size_t length : {size_t{0}, size_t{15}, size_t{16}, bytes.size() / 2, bytes.size() - 1}) {
    write_file(dir.file("cut.seqrun"), bytes.substr(0, length));
    CHECK_FALSE(load_model(dir.file("cut.seqrun")).is_ok());
  }
}

TEST_CASE("hostile: flatbuffer size past the end of the file") {
  std::string bytes = small_file();
  put64(bytes, 8, bytes.size());
  expect_rejected(bytes, {"m.seqrun: flatbuffer: size", "runs past the end of the file"});
  put64(bytes, 8, ~uint64_t{0});
  expect_rejected(bytes, {"m.seqrun: flatbuffer: size 18446744073709551615 runs past the end"});
}

TEST_CASE("hostile: flatbuffer fails verification") {
  const std::string good = small_file();
  const uint64_t fb_size = le64(good, 8);
  std::string bytes = good;
  put32(bytes, 16, 0xFFFFFF00u);  // root offset far outside the buffer
  expect_rejected(bytes, {"m.seqrun: flatbuffer: root offset is out of bounds"});
  bytes = good;
  put32(bytes, 16, static_cast<uint32_t>(fb_size - 2));  // root table straddles the end
  expect_rejected(bytes, {"m.seqrun: flatbuffer: model table fails verification"});
  bytes = good;
  bytes[20] = 'X';  // file identifier "SQRF"
  expect_rejected(bytes, {"m.seqrun: flatbuffer: missing the 'SQRF' identifier"});
}

TEST_CASE("hostile: single corrupted bytes never crash") {
  const std::string good = encode(small_model());
  const uint64_t end = 16 + le64(good, 8);
  for (uint64_t at = 16; at < end; ++at) {
    for (uint8_t value : {uint8_t{0x00}, uint8_t{0x7f}, uint8_t{0xff}}) {
      std::string bytes = good;
      bytes[at] = static_cast<char>(value);
      Status st = load_bytes(bytes);  // ok or an error, never a crash
      if (!st.is_ok()) CHECK(st.message().rfind("m.seqrun: ", 0) == 0);
    }
  }
}

TEST_CASE("hostile: blob starts past the end of the file") {
  RawModel m = small_model();
  m.tensors.clear();
  m.values[1].role = 1;  // w becomes a graph input: no tensors at all
  m.inputs = {0, 1};
  m.blob_bytes = 0;
  std::string bytes = encode(m);
  REQUIRE(load_bytes(bytes).is_ok());
  // Ten bytes more, and a flatbuffer size that claims all of them: the 64-byte aligned blob start
  // then lies past the end.
  const uint64_t padded = bytes.size();
  bytes += std::string(10, '\0');
  put64(bytes, 8, padded + 10 - 16);
  expect_rejected(bytes, {"m.seqrun: blob: starts at byte " + std::to_string(padded + 64) +
                          ", past the end of the file (" + std::to_string(padded + 10) + " bytes)"});
}

TEST_CASE("hostile: tensor offset past the end of the blob") {
  RawModel m = small_model();
  m.tensors[0].offset = 64;
  expect_rejected(encode(m), {"m.seqrun: tensor 'w' (#0): offset 64+8 exceeds blob size 64"});
  // offset + size wraps around 2^64: still out of bounds.
  m.tensors[0].offset = ~uint64_t{63};
  expect_rejected(encode(m), {"tensor 'w' (#0): offset 18446744073709551552+8 exceeds blob size 64"});
}

TEST_CASE("hostile: overlapping tensors") {
  RawModel m = small_model();
  m.blob_bytes = 256;
  m.tensors = {{"big", 1, {32}, 0, 128}, {"w", 1, {2}, 64, 8}};
  m.values[1].tensor = 1;
  expect_rejected(encode(m),
                  {"m.seqrun: tensor 'w' (#1): bytes [64, 72) overlap tensor 'big' (#0) at [0, 128)"});
  // Same start.
  m.tensors = {{"a", 1, {2}, 128, 8}, {"b", 1, {2}, 128, 8}};
  expect_rejected(encode(m), {"overlap tensor"});
  // Adjacent (each padded to 64) and empty tensors do not overlap.
  m.tensors = {{"a", 1, {2}, 0, 8}, {"e", 1, {0}, 64, 0}, {"b", 1, {16}, 64, 64}, {"e2", 1, {0, 5}, 64, 0}};
  Status st = load_bytes(encode(m));
  INFO(st.message());
  CHECK(st.is_ok());
}

TEST_CASE("hostile: misaligned tensor offset") {
  RawModel m = small_model();
  m.tensors[0].offset = 8;
  expect_rejected(encode(m), {"m.seqrun: tensor 'w' (#0): offset 8 is not a multiple of 64"});
}

TEST_CASE("hostile: shape whose element count overflows") {
  RawModel m = small_model();
  // 2^32 * 2^32 = 2^64 wraps to 0 in 64-bit arithmetic: size 0 must not be accepted.
  m.tensors[0].shape = {int64_t{1} << 32, int64_t{1} << 32};
  m.tensors[0].size = 0;
  expect_rejected(encode(m), {"m.seqrun: tensor 'w' (#0): shape [4294967296, 4294967296]"});
  // An empty tensor whose other dims overflow (num_elements would multiply them first).
  m.tensors[0].shape = {int64_t{1} << 40, int64_t{1} << 40, 0};
  expect_rejected(encode(m),
                  {"m.seqrun: tensor 'w' (#0): shape [1099511627776, 1099511627776] has too many"});
  // A value type with such static dims.
  m = small_model();
  m.values[2].dims = {int64_t{1} << 40, 0, int64_t{1} << 40};
  expect_rejected(encode(m), {"m.seqrun: value 'y' (#2): shape [1099511627776, 1099511627776] has too many"});
  m = small_model();
  m.tensors[0].shape = {int64_t{1} << 62, 4, 3};
  m.tensors[0].size = 8;
  expect_rejected(encode(m), {"m.seqrun: tensor 'w' (#0):", "overflows"});
}

TEST_CASE("hostile: negative dim") {
  RawModel m = small_model();
  m.tensors[0].shape = {-2};
  expect_rejected(encode(m), {"m.seqrun: tensor 'w' (#0): negative dimension -2"});
}

TEST_CASE("hostile: tensor size does not match its shape") {
  RawModel m = small_model();
  m.tensors[0].size = 12;
  expect_rejected(encode(m),
                  {"m.seqrun: tensor 'w' (#0): size 12 bytes does not match shape [2] of f32 (8 bytes)"});
}

TEST_CASE("hostile: invalid dtype") {
  RawModel m = small_model();
  m.tensors[0].dtype = 99;
  expect_rejected(encode(m), {"m.seqrun: tensor 'w' (#0): invalid dtype 99"});
  m.tensors[0].dtype = 0;
  expect_rejected(encode(m), {"m.seqrun: tensor 'w' (#0): invalid dtype 0"});
  m = small_model();
  m.values[0].dtype = 200;
  expect_rejected(encode(m), {"m.seqrun: value 'x' (#0): invalid dtype 200"});
}

TEST_CASE("hostile: cyclic graph") {
  RawModel m = small_model();
  m.values = {{"x", 1}, {"a", 0}, {"b", 0}, {"w", 2, 1, {2}, 0}};
  m.nodes = {{"Neg", "first", {2}, {1}, {}, 0}, {"Neg", "second", {1}, {2}, {}, 0}};
  m.outputs = {2};
  expect_rejected(encode(m), {"m.seqrun: node 'first' (#0): input #0 (value 'b' (#2)) is used before "
                              "it is defined"});
  // A node reading its own output.
  m.nodes = {{"Neg", "self", {1}, {1}, {}, 0}, {"Neg", "second", {1}, {2}, {}, 0}};
  expect_rejected(encode(m), {"node 'self' (#0): input #0 (value 'a' (#1)) is used before it is defined"});
}

TEST_CASE("hostile: unknown op") {
  RawModel m = small_model();
  m.nodes[0].op = "Frobnicate";
  m.nodes[0].name = "foo";
  expect_rejected(encode(m), {"m.seqrun: node 'foo' (#0): unknown op 'Frobnicate'"});
  // Names from the file cannot break the one-line error, nor make it huge.
  m.nodes[0].op = "Frob\nnicate";
  m.nodes[0].name = std::string(1000, 'n');
  expect_rejected(encode(m), {"node '" + std::string(120, 'n') + "...' (#0): unknown op 'Frob\\x0anicate'"});
}

TEST_CASE("hostile: missing input") {
  RawModel m = small_model();
  m.nodes[0].inputs = {0, 99};
  expect_rejected(encode(m), {"node 'add' (#0): input #1 has value index 99, out of range (3 values)"});
  m.nodes[0].inputs = {0, -7};
  expect_rejected(encode(m), {"node 'add' (#0): input #1 has value index -7"});
  // A value no node produces.
  m = small_model();
  m.values.push_back({"ghost", 0});
  m.nodes[0].inputs = {0, 3};
  expect_rejected(encode(m), {"m.seqrun: value 'ghost' (#3): is never defined"});
  // A graph output index out of range.
  m = small_model();
  m.outputs = {5};
  expect_rejected(encode(m), {"output #0: value index 5 is out of range (3 values)"});
  // -1 is an absent optional input, not a missing one.
  m = small_model();
  m.nodes[0] = {"Clip", "clip", {0, -1, 1}, {2}, {}, 0};
  Status st = load_bytes(encode(m));
  INFO(st.message());
  CHECK(st.is_ok());
}

TEST_CASE("hostile: bad attribute type") {
  RawModel m = small_model();
  m.nodes[0] = {"Softmax", "sm", {0}, {2}, {{"axis", static_cast<uint8_t>(AttrType::String), 0, "last"}}, 0};
  expect_rejected(encode(m), {"m.seqrun: node 'sm' (#0): attribute 'axis' must be int, is string"});
  m.nodes[0].attrs[0].type = 42;
  expect_rejected(encode(m), {"node 'sm' (#0): attribute 'axis': invalid attribute type 42"});
  m.nodes[0].attrs = {{"axis", 0, 1, ""}, {"axis", 0, 2, ""}};
  expect_rejected(encode(m), {"node 'sm' (#0): attribute 'axis': duplicate attribute"});
}

TEST_CASE("hostile: value table inconsistencies") {
  RawModel m = small_model();
  m.nodes.push_back({"Neg", "again", {0}, {2}, {}, 0});
  expect_rejected(encode(m), {"node 'again' (#1): output #0 is value 'y' (#2), already produced by node #0"});
  m = small_model();
  m.nodes[0].outputs = {0};
  expect_rejected(encode(m), {"node 'add' (#0): output #0 is value 'x' (#0), which is a graph input"});
  m = small_model();
  m.values[1].tensor = 3;
  expect_rejected(encode(m), {"value 'w' (#1): constant's tensor index 3 is out of range (1 tensors)"});
  m = small_model();
  m.values.push_back({"w2", 2, 1, {2}, 0});
  expect_rejected(encode(m), {"value 'w2' (#3): tensor #0 is already used by another value or attribute"});
  m = small_model();
  m.values[1].name = "x";
  expect_rejected(encode(m), {"value 'x' (#1): duplicate value name"});
  m = small_model();
  m.values[2].role = 9;
  expect_rejected(encode(m), {"value 'y' (#2): invalid role 9"});
  m = small_model();
  m.inputs = {0, 0};
  expect_rejected(encode(m), {"input #1: value 'x' (#0) is listed twice"});
  m = small_model();
  m.nodes[0].num_captures = -5;
  expect_rejected(encode(m), {"node 'add' (#0): capture count -5 is invalid"});
}

TEST_CASE("hostile: graphs nested too deep") {
  // The main graph plus 64 levels of bodies is the limit (as in verify_graph).
  Status at_limit = load_bytes(encode_nested(65));
  INFO(at_limit.message());
  CHECK(at_limit.is_ok());
  expect_rejected(encode_nested(66), {"nested graphs deeper than 64 levels"});
  expect_rejected(encode_nested(200), {"m.seqrun: node #0: attribute 'body': node #0: attribute 'body':",
                                       "nested graphs deeper than 64 levels"});
}

TEST_CASE("hostile: shared objects cannot multiply the work") {
  // 2000 attributes that all point at one vector of 10000 strings: a few hundred KB of file that
  // would expand to 20 million strings. The loader stops once it has read more than the file holds.
  flatbuffers::FlatBufferBuilder fbb;
  auto one = fbb.CreateString("s");
  std::vector<flatbuffers::Offset<flatbuffers::String>> many(10000, one);
  auto strings = fbb.CreateVector(many);
  std::vector<flatbuffers::Offset<fb::Attribute>> attrs;
  for (int i = 0; i < 2000; ++i) {
    attrs.push_back(fb::CreateAttribute(fbb, fbb.CreateString("a" + std::to_string(i)),
                                        static_cast<uint8_t>(AttrType::Strings), 0, 0.0f, 0, 0, 0, strings));
  }
  auto type = fb::CreateTensorType(fbb, 1, false);
  std::vector<flatbuffers::Offset<fb::Value>> values = {fb::CreateValue(fbb, fbb.CreateString("x"), type, 1),
                                                        fb::CreateValue(fbb, fbb.CreateString("y"), type, 0)};
  std::vector<int32_t> in = {0}, out = {1};
  std::vector<flatbuffers::Offset<fb::Node>> nodes = {
      fb::CreateNode(fbb, fbb.CreateString("Neg"), fbb.CreateString("n"), fbb.CreateVector(in),
                     fbb.CreateVector(out), fbb.CreateVector(attrs))};
  auto graph = fb::CreateGraph(fbb, fbb.CreateString("main"), fbb.CreateVector(values),
                               fbb.CreateVector(nodes), fbb.CreateVector(in), fbb.CreateVector(out));
  fb::FinishModelBuffer(fbb, fb::CreateModel(fbb, 0, 0, graph));
  expect_rejected(frame(fbb.GetBufferPointer(), fbb.GetSize(), 0),
                  {"node 'n' (#0): attribute", "shared or repeated"});
}
