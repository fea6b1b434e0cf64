// Writes the fuzzer's seed corpus: a few valid .seqrun files covering every part of the format
// (weights of several dtypes, symbolic dims, attributes, nested graphs with captures), plus a
// libFuzzer dictionary of the format's magic strings and the registered op names.
// Usage: fuzz_seed_corpus CORPUS_DIR DICT_FILE
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/op_schema.h"
#include "ir/serialize.h"

using namespace seqrun;

namespace {

TensorType seq_type() {
  return TensorType(DType::f32, {Dim::symbol("batch"), Dim::symbol("seq"), Dim(4)});
}

// y = x + w
std::unique_ptr<Graph> add_graph() {
  auto g = std::make_unique<Graph>("add");
  Value* x = g->add_input("x", TensorType(DType::f32, {Dim(3)}));
  Value* w = g->add_constant("w", Tensor::from_vector<float>({3}, {1.0f, 2.0f, 3.0f}));
  Node* add = g->add_node("Add", {x, w}, 1, {}, {"y"});
  g->set_value_type(add->output(0), TensorType(DType::f32, {Dim(3)}));
  g->set_outputs({add->output(0)});
  return g;
}

// Attributes of every type the registry uses, an absent optional input, a two-output node.
std::unique_ptr<Graph> attribute_graph() {
  auto g = std::make_unique<Graph>("attrs");
  Value* x = g->add_input("x", seq_type());
  Value* shape = g->add_input("shape", TensorType(DType::i64, {Dim::unknown()}));
  Value* w = g->add_constant("w", Tensor::from_vector<float>({4, 4}, std::vector<float>(16, 0.5f)));
  Value* k = g->add_constant("k", Tensor::from_vector<int64_t>({1}, {2}));
  Value* hi = g->add_constant("hi", Tensor::scalar<float>(6.0f));
  Node* mm = g->add_node("MatMul", {x, w}, 1, {}, {"mm"});
  Node* sm = g->add_node("Softmax", {mm->output(0)}, 1, {{"axis", int64_t{-1}}}, {"sm"});
  Node* elu = g->add_node("Elu", {sm->output(0)}, 1, {{"alpha", 0.25f}}, {"elu"});
  Node* gelu = g->add_node("Gelu", {elu->output(0)}, 1, {{"approximate", "tanh"}}, {"gelu"});
  Node* tr =
      g->add_node("Transpose", {gelu->output(0)}, 1, {{"perm", std::vector<int64_t>{1, 0, 2}}}, {"tr"});
  Node* clip = g->add_node("Clip", {x, nullptr, hi}, 1, {}, {"clip"});
  Node* fill = g->add_node("ConstantOfShape", {shape}, 1,
                           {{"value", Tensor::from_vector<float>({1}, {3.5f})}}, {"fill"});
  Node* topk = g->add_node("TopK", {x, k}, 2, {{"axis", int64_t{2}}}, {"values", "indices"});
  for (Node* n : {mm, sm, elu, gelu, clip}) g->set_value_type(n->output(0), seq_type());
  g->set_value_type(tr->output(0), TensorType::unknown_rank(DType::f32));
  g->set_value_type(fill->output(0), TensorType(DType::f32, {Dim::unknown()}));
  g->set_value_type(topk->output(1),
                    TensorType(DType::i64, {Dim::symbol("batch"), Dim::symbol("seq"), Dim(2)}));
  g->set_outputs({tr->output(0), clip->output(0), fill->output(0), topk->output(0), topk->output(1)});
  return g;
}

// If with bodies that capture an outer value and hold constants of their own, nested two deep.
std::shared_ptr<Graph> branch(const std::string& name, const std::string& op, bool nested) {
  auto body = std::make_shared<Graph>(name);
  Value* c = body->add_capture("c", seq_type());
  Value* bias = body->add_constant("bias", Tensor::from_vector<float>({4}, {1.0f, -1.0f, 0.5f, 2.0f}));
  Node* add = body->add_node("Add", {c, bias}, 1, {}, {"biased"});
  Node* last = body->add_node(op, {add->output(0)}, 1, {}, {name + "_out"});
  if (nested) {
    Value* cond = body->add_constant("cond", Tensor::from_vector<bool>({}, {false}));
    last = body->add_node("If", {cond, last->output(0)}, 1,
                          {{"then_branch", branch(name + "_then", "Neg", false)},
                           {"else_branch", branch(name + "_else", "Exp", false)}},
                          {name + "_if"});
    last->set_num_captures(1);
  }
  body->set_outputs({last->output(0)});
  return body;
}

std::unique_ptr<Graph> control_flow_graph() {
  auto g = std::make_unique<Graph>("control");
  Value* cond = g->add_input("cond", TensorType(DType::boolean, {}));
  Value* x = g->add_input("x", seq_type());
  Node* n = g->add_node(
      "If", {cond, x}, 1,
      {{"then_branch", branch("then", "Neg", true)}, {"else_branch", branch("else", "Exp", false)}}, {"out"});
  n->set_num_captures(1);
  n->set_name("choose");
  g->set_outputs({n->output(0)});
  return g;
}

// Weights of every dtype, an empty one and a scalar.
std::unique_ptr<Graph> dtype_graph() {
  auto g = std::make_unique<Graph>("dtypes");
  Value* x = g->add_input("x", TensorType::unknown_rank(DType::f64));
  g->add_constant("f16", Tensor::from_vector<half_t>({2}, {{0x3c00}, {0xc000}}));
  g->add_constant("bf16", Tensor::from_vector<bfloat16_t>({2}, {{0x3f80}, {0x4000}}));
  g->add_constant("i64", Tensor::from_vector<int64_t>({2}, {-1, 1}));
  g->add_constant("i32", Tensor::from_vector<int32_t>({2, 1}, {5, 6}));
  g->add_constant("i16", Tensor::from_vector<int16_t>({1}, {-7}));
  g->add_constant("i8", Tensor::from_vector<int8_t>({1}, {8}));
  g->add_constant("u8", Tensor::from_vector<uint8_t>({3}, {1, 2, 3}));
  g->add_constant("u16", Tensor::from_vector<uint16_t>({1}, {9}));
  g->add_constant("u32", Tensor::from_vector<uint32_t>({1}, {10}));
  g->add_constant("u64", Tensor::from_vector<uint64_t>({1}, {11}));
  g->add_constant("bool", Tensor::from_vector<bool>({2}, {true, false}));
  g->add_constant("empty", Tensor::from_vector<float>({0, 2}, {}));
  Value* scalar = g->add_constant("scalar", Tensor::scalar<double>(2.5));
  Node* mul = g->add_node("Mul", {x, scalar}, 1, {}, {"y"});
  g->set_outputs({mul->output(0)});
  return g;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR DICT_FILE\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  struct Seed {
    const char* name;
    std::unique_ptr<Graph> graph;
  };
  std::vector<Seed> seeds;
  seeds.push_back({"add.seqrun", add_graph()});
  seeds.push_back({"attributes.seqrun", attribute_graph()});
  seeds.push_back({"control_flow.seqrun", control_flow_graph()});
  seeds.push_back({"dtypes.seqrun", dtype_graph()});
  SaveOptions options;
  options.producer = "fuzz_seed_corpus";
  options.metadata = {{"purpose", "seed"}};
  for (const Seed& seed : seeds) {
    Status st = save_model(*seed.graph, dir + "/" + seed.name, options);
    if (!st.is_ok()) {
      std::fprintf(stderr, "fuzz_seed_corpus: %s\n", st.message().c_str());
      return 1;
    }
  }
  std::ofstream dict(argv[2]);
  dict << "\"SEQR\"\n\"SQRF\"\n";
  for (const std::string& op : OpRegistry::global().op_names()) dict << '"' << op << "\"\n";
  return dict ? 0 : 1;
}
