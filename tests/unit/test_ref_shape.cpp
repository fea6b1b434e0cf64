// Shape-family ops (schemas + reference kernels): one-node graphs run through the ReferenceExecutor.
//
// Expected values are written by hand, computed by naive loops here, or are numpy outputs hard-coded
// with the numpy expression that produced them. Error cases check that the message names the node.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "ir/graph.h"
#include "ir/infer.h"
#include "ir/verify.h"
#include "runtime/executor.h"

using namespace seqrun;

namespace {

enum class Role { input, constant, absent };
struct Arg {
  Role role;
  Tensor value;
  std::optional<TensorType> declared;  // graph-input type, when not the tensor's own static shape
};
Arg in(Tensor t) {
  return {Role::input, std::move(t), std::nullopt};
}
Arg cst(Tensor t) {
  return {Role::constant, std::move(t), std::nullopt};
}
Arg absent() {
  return {Role::absent, Tensor(), std::nullopt};
}

struct Run {
  Status status;  // the first failure: verify, inference or execution
  std::vector<Tensor> outputs;
  std::vector<TensorType> types;  // inferred output types
  const Tensor& out(int i = 0) const { return outputs.at(static_cast<size_t>(i)); }
};

Run run_op(const std::string& op, const std::vector<Arg>& args, std::map<std::string, Attribute> attrs = {},
           int num_outputs = 1) {
  Run r;
  Graph g;
  std::vector<Value*> ins;
  std::vector<Tensor> feeds;
  for (size_t i = 0; i < args.size(); ++i) {
    const Arg& a = args[i];
    const std::string name = "x" + std::to_string(i);
    if (a.role == Role::absent) {
      ins.push_back(nullptr);
    } else if (a.role == Role::constant) {
      ins.push_back(g.add_constant(name, a.value));
    } else {
      ins.push_back(g.add_input(
          name, a.declared ? *a.declared : TensorType::from_shape(a.value.dtype(), a.value.shape())));
      feeds.push_back(a.value);
    }
  }
  Node* n = g.add_node(op, ins, num_outputs, std::move(attrs));
  n->set_name("node_under_test");
  g.set_outputs(n->outputs());
  r.status = verify_graph(g);
  if (!r.status) return r;
  r.status = infer_graph_types(g);
  if (!r.status) return r;
  for (Value* v : n->outputs()) r.types.push_back(v->type());
  auto res = runtime::ReferenceExecutor().run(g, feeds);
  if (!res) {
    r.status = res.status();
    return r;
  }
  r.outputs = std::move(res).value();
  return r;
}

// Output types of one node whose inputs have the given (possibly symbolic) types or constant values.
Result<std::vector<TensorType>> infer_op(const std::string& op,
                                         const std::vector<std::variant<TensorType, Tensor>>& args,
                                         std::map<std::string, Attribute> attrs = {}, int num_outputs = 1) {
  Graph g;
  std::vector<Value*> ins;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string name = "x" + std::to_string(i);
    if (std::holds_alternative<Tensor>(args[i])) {
      ins.push_back(g.add_constant(name, std::get<Tensor>(args[i])));
    } else {
      ins.push_back(g.add_input(name, std::get<TensorType>(args[i])));
    }
  }
  Node* n = g.add_node(op, ins, num_outputs, std::move(attrs));
  n->set_name("node_under_test");
  SEQRUN_TRY(infer_graph_types(g));
  std::vector<TensorType> types;
  for (Value* v : n->outputs()) types.push_back(v->type());
  return types;
}

#define REQUIRE_OK(run)            \
  do {                             \
    INFO((run).status.message());  \
    REQUIRE((run).status.is_ok()); \
  } while (0)

void check_error(const Status& st, const std::string& needle) {
  INFO("message: " << st.message());
  INFO("expected error containing: " << needle);
  REQUIRE_FALSE(st.is_ok());
  CHECK(st.message().find("node_under_test") != std::string::npos);
  CHECK(st.message().find(needle) != std::string::npos);
}

template <typename T>
std::vector<T> vals(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

template <typename T>
Tensor tensor(Shape shape, std::vector<T> v) {
  return Tensor::from_vector<T>(std::move(shape), v);
}
Tensor i64s(std::vector<int64_t> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from_vector<int64_t>({n}, v);
}
Tensor i32s(std::vector<int32_t> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from_vector<int32_t>({n}, v);
}
// 0, 1, 2, ... as f32 of the given shape.
Tensor iota_f32(Shape shape) {
  Tensor t = Tensor::empty(DType::f32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i);
  return t;
}
// 0, 1, 2, ... as i64 of the given shape.
Tensor iota_i64(Shape shape) {
  Tensor t = Tensor::empty(DType::i64, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] = i;
  return t;
}
// Arbitrary 16-bit patterns (NaN payloads, subnormals, negative zero) that a float round trip would change.
Tensor odd_bits16(DType dtype, Shape shape) {
  Tensor t = Tensor::empty(dtype, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<uint16_t>()[i] = static_cast<uint16_t>(0x7C01 + 0x1111 * i);
  return t;
}

std::string type_str(const Run& r, int i = 0) {
  return r.types.at(static_cast<size_t>(i)).to_string();
}

constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();

}  // namespace

// ------------------------------------------------------------------------------------------------
// Shape, Size

TEST_CASE("Shape: whole shape and start/end with clamping") {
  Tensor x = iota_f32({2, 3, 4});
  Run r = run_op("Shape", {in(x)});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "i64[3]");
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{2, 3, 4});

  r = run_op("Shape", {in(x)}, {{"start", 1}});
  REQUIRE_OK(r);
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{3, 4});
  r = run_op("Shape", {in(x)}, {{"end", -1}});
  REQUIRE_OK(r);
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{2, 3});
  r = run_op("Shape", {in(x)}, {{"start", -10}, {"end", 10}});  // both clamp
  REQUIRE_OK(r);
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{2, 3, 4});
  r = run_op("Shape", {in(x)}, {{"start", 2}, {"end", 1}});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "i64[0]");
  CHECK(r.out().numel() == 0);
}

TEST_CASE("Size: element count as an i64 scalar") {
  Run r = run_op("Size", {in(iota_f32({2, 3, 4}))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "i64[]");
  CHECK(r.out().rank() == 0);
  CHECK(r.out().data<int64_t>()[0] == 24);
}

// ------------------------------------------------------------------------------------------------
// Reshape, Flatten, Squeeze, Unsqueeze

TEST_CASE("Reshape: 0 copies a dim, -1 is inferred, bytes unchanged") {
  Tensor x = iota_f32({2, 3, 4});
  Run r = run_op("Reshape", {in(x), cst(i64s({4, 0, -1}))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "f32[4, 3, 2]");
  CHECK(r.out().shape() == Shape{4, 3, 2});
  CHECK(vals<float>(r.out()) == vals<float>(x));

  // Shape not constant: rank from the shape input's length; values at run time.
  r = run_op("Reshape", {in(x), in(i64s({-1, 6}))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "f32[?, ?]");
  CHECK(r.out().shape() == Shape{4, 6});
}

TEST_CASE("Reshape: allowzero keeps a literal 0") {
  Tensor x = Tensor::empty(DType::f32, {0, 3});
  Run r = run_op("Reshape", {in(x), cst(i64s({3, 0}))}, {{"allowzero", 1}});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "f32[3, 0]");
  CHECK(r.out().shape() == Shape{3, 0});
}

TEST_CASE("Reshape: inference with symbolic dims") {
  auto t = infer_op("Reshape",
                    {TensorType(DType::f32, {Dim::symbol("batch"), Dim::symbol("seq"), Dim(8), Dim(64)}),
                     i64s({0, 0, -1})});
  REQUIRE(t.is_ok());
  CHECK(t->at(0).to_string() == "f32[batch, seq, 512]");
  t = infer_op("Reshape", {TensorType(DType::f16, {Dim::symbol("batch"), Dim(512)}), i64s({-1, 8, 64})});
  REQUIRE(t.is_ok());
  CHECK(t->at(0).to_string() == "f16[batch, 8, 64]");
  t = infer_op("Reshape", {TensorType(DType::f32, {Dim::symbol("batch"), Dim(6)}), i64s({-1, 3})});
  REQUIRE(t.is_ok());
  CHECK(t->at(0).to_string() == "f32[?, 3]");
  // Definite contradiction at inference time.
  check_error(infer_op("Reshape", {TensorType(DType::f32, {Dim(2), Dim(3)}), i64s({4, 2})}).status(),
              "reshape");
}

TEST_CASE("Reshape: element-count mismatch, two -1 and bad dims are errors") {
  Tensor x = iota_f32({2, 3});
  check_error(run_op("Reshape", {in(x), in(i64s({4, 2}))}).status, "cannot reshape");
  check_error(run_op("Reshape", {in(x), in(i64s({-1, -1}))}).status, "more than one -1");
  check_error(run_op("Reshape", {in(x), in(i64s({-2, 3}))}).status, "negative");
  check_error(run_op("Reshape", {in(x), in(i64s({-1, 4}))}).status, "cannot reshape");
  check_error(run_op("Reshape", {in(x), in(i64s({6, 1, 0}))}).status, "rank");
  check_error(run_op("Reshape", {in(x), cst(i64s({-1, -1}))}).status, "more than one -1");
}

TEST_CASE("Flatten: axis splits the dims into two products") {
  Tensor x = iota_f32({2, 3, 4, 5});
  Run r = run_op("Flatten", {in(x)});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "f32[2, 60]");
  CHECK(r.out().shape() == Shape{2, 60});
  r = run_op("Flatten", {in(x)}, {{"axis", -1}});
  REQUIRE_OK(r);
  CHECK(r.out().shape() == Shape{24, 5});
  r = run_op("Flatten", {in(x)}, {{"axis", 0}});
  REQUIRE_OK(r);
  CHECK(r.out().shape() == Shape{1, 120});
  r = run_op("Flatten", {in(x)}, {{"axis", 4}});
  REQUIRE_OK(r);
  CHECK(r.out().shape() == Shape{120, 1});
  CHECK(vals<float>(r.out()) == vals<float>(x));
  check_error(run_op("Flatten", {in(x)}, {{"axis", 5}}).status, "axis");
}

TEST_CASE("Squeeze and Unsqueeze") {
  Tensor x = iota_f32({1, 3, 1, 2});
  Run r = run_op("Squeeze", {in(x)});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "f32[3, 2]");
  CHECK(r.out().shape() == Shape{3, 2});
  r = run_op("Squeeze", {in(x), cst(i64s({-2}))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "f32[1, 3, 2]");
  CHECK(vals<float>(r.out()) == vals<float>(x));
  check_error(run_op("Squeeze", {in(x), in(i64s({1}))}).status, "not 1");
  check_error(run_op("Squeeze", {in(x), cst(i64s({1}))}).status, "not 1");
  check_error(run_op("Squeeze", {in(x), in(i64s({4}))}).status, "out of range");

  Tensor y = iota_f32({3, 2});
  r = run_op("Unsqueeze", {in(y), cst(i64s({0, -1, 2}))});  // numpy: expand_dims(y, (0, -1, 2)).shape
  REQUIRE_OK(r);
  CHECK(type_str(r) == "f32[1, 3, 1, 2, 1]");
  CHECK(r.out().shape() == Shape{1, 3, 1, 2, 1});
  r = run_op("Unsqueeze", {in(y), in(i64s({1}))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "f32[?, ?, ?]");
  CHECK(r.out().shape() == Shape{3, 1, 2});
  check_error(run_op("Unsqueeze", {in(y), in(i64s({1, 1}))}).status, "twice");
  check_error(run_op("Unsqueeze", {in(y), in(i64s({3}))}).status, "out of range");
}

// ------------------------------------------------------------------------------------------------
// Transpose

TEST_CASE("Transpose: explicit and default perm match a naive loop") {
  Tensor x = iota_f32({2, 3, 4});
  Run r = run_op("Transpose", {in(x)}, {{"perm", std::vector<int64_t>{1, 2, 0}}});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "f32[3, 4, 2]");
  std::vector<float> expected;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 2; ++k) expected.push_back(static_cast<float>(k * 12 + i * 4 + j));
  CHECK(vals<float>(r.out()) == expected);

  r = run_op("Transpose", {in(x)});
  REQUIRE_OK(r);
  CHECK(r.out().shape() == Shape{4, 3, 2});
  expected.clear();
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 2; ++k) expected.push_back(static_cast<float>(k * 12 + j * 4 + i));
  CHECK(vals<float>(r.out()) == expected);

  check_error(run_op("Transpose", {in(x)}, {{"perm", std::vector<int64_t>{0, 0, 1}}}).status, "twice");
  check_error(run_op("Transpose", {in(x)}, {{"perm", std::vector<int64_t>{0, 1}}}).status, "perm");
}

TEST_CASE("Transpose: f16 and bf16 bits pass through unchanged") {
  for (DType dt : {DType::f16, DType::bf16}) {
    Tensor x = odd_bits16(dt, {2, 3});
    Run r = run_op("Transpose", {in(x)});
    REQUIRE_OK(r);
    REQUIRE(r.out().dtype() == dt);
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 2; ++j) CHECK(r.out().data<uint16_t>()[i * 2 + j] == x.data<uint16_t>()[j * 3 + i]);
  }
}

// ------------------------------------------------------------------------------------------------
// Slice

TEST_CASE("Slice: steps, negative steps and clamping follow numpy/ONNX") {
  Tensor x = iota_i64({10});
  // numpy: np.arange(10)[8:2:-2] -> [8, 6, 4]
  Run r = run_op("Slice", {in(x), cst(i64s({8})), cst(i64s({2})), cst(i64s({0})), cst(i64s({-2}))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "i64[3]");
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{8, 6, 4});
  // np.arange(10)[::-1][:3] -> [9, 8, 7]: start -1, end INT64_MIN, step -1, then a second slice.
  r = run_op("Slice", {in(x), cst(i64s({-1})), cst(i64s({kI64Min})), absent(), cst(i64s({-1}))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "i64[10]");
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{9, 8, 7, 6, 5, 4, 3, 2, 1, 0});
  // np.arange(10)[20:] -> []
  r = run_op("Slice", {in(x), cst(i64s({20})), cst(i64s({kI64Max}))});
  REQUIRE_OK(r);
  CHECK(r.out().numel() == 0);
  // np.arange(10)[-3:1000] -> [7, 8, 9], with i32 starts/ends given at run time.
  r = run_op("Slice", {in(x), in(i32s({-3})), in(i32s({1000}))});
  REQUIRE_OK(r);
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{7, 8, 9});
  // Huge negative step: one element.
  r = run_op("Slice", {in(x), cst(i64s({5})), cst(i64s({0})), absent(), cst(i64s({kI64Min}))});
  REQUIRE_OK(r);
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{5});
}

TEST_CASE("Slice: 2-D with axes") {
  Tensor y = iota_i64({3, 4});
  // numpy: np.arange(12).reshape(3,4)[:, 0:4:2] -> [[0, 2], [4, 6], [8, 10]]
  Run r = run_op("Slice", {in(y), cst(i64s({0})), cst(i64s({4})), cst(i64s({-1})), cst(i64s({2}))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "i64[3, 2]");
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{0, 2, 4, 6, 8, 10});
  // numpy: y[2:0:-1, -1:-5:-3] -> [[11, 8], [7, 4]]
  r = run_op("Slice",
             {in(y), cst(i64s({2, -1})), cst(i64s({0, -5})), cst(i64s({0, 1})), cst(i64s({-1, -3}))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "i64[2, 2]");
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{11, 8, 7, 4});
  // Symbolic dim sliced [0:INT_MAX] keeps its name.
  auto t = infer_op("Slice",
                    {TensorType(DType::f32, {Dim::symbol("seq"), Dim(4)}), i64s({0, 1}), i64s({kI64Max, 3})});
  REQUIRE(t.is_ok());
  CHECK(t->at(0).to_string() == "f32[seq, 2]");
}

TEST_CASE("Slice: zero step, bad axes and length mismatch are errors") {
  Tensor x = iota_i64({4, 4});
  check_error(run_op("Slice", {in(x), in(i64s({0})), in(i64s({2})), in(i64s({0})), in(i64s({0}))}).status,
              "step");
  check_error(run_op("Slice", {in(x), in(i64s({0, 0})), in(i64s({2, 2})), in(i64s({1, -1}))}).status,
              "twice");
  check_error(run_op("Slice", {in(x), in(i64s({0})), in(i64s({2})), in(i64s({2}))}).status, "out of range");
  check_error(run_op("Slice", {in(x), in(i64s({0, 1})), in(i64s({2}))}).status, "same length");
}

// ------------------------------------------------------------------------------------------------
// Concat, Split

TEST_CASE("Concat: along an axis, matching a naive loop") {
  Tensor a = iota_f32({2, 1});
  Tensor b = tensor<float>({2, 2}, {10, 11, 12, 13});
  Run r = run_op("Concat", {in(a), in(b)}, {{"axis", -1}});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "f32[2, 3]");
  CHECK(vals<float>(r.out()) == std::vector<float>{0, 10, 11, 1, 12, 13});
  r = run_op("Concat", {in(b), in(b)}, {{"axis", 0}});
  REQUIRE_OK(r);
  CHECK(vals<float>(r.out()) == std::vector<float>{10, 11, 12, 13, 10, 11, 12, 13});
  check_error(run_op("Concat", {in(a), in(iota_f32({3, 2}))}, {{"axis", 1}}).status, "differs");
  // Runtime mismatch (declared types unknown).
  Arg loose = in(iota_f32({3, 2}));
  loose.declared = TensorType::unknown_rank(DType::f32);
  check_error(run_op("Concat", {in(a), loose}, {{"axis", 1}}).status, "does not match");
}

TEST_CASE("Concat: bf16 bits pass through") {
  Tensor a = odd_bits16(DType::bf16, {1, 2});
  Tensor b = odd_bits16(DType::bf16, {1, 3});
  Run r = run_op("Concat", {in(a), in(b)}, {{"axis", 1}});
  REQUIRE_OK(r);
  std::vector<uint16_t> expected = vals<uint16_t>(a);
  for (uint16_t v : vals<uint16_t>(b)) expected.push_back(v);
  CHECK(vals<uint16_t>(r.out()) == expected);
}

TEST_CASE("Split: opset-18 num_outputs gives an uneven last chunk") {
  Tensor x = iota_f32({7});
  Run r = run_op("Split", {in(x)}, {{"num_outputs", 3}}, 3);
  REQUIRE_OK(r);
  CHECK(type_str(r, 0) == "f32[3]");
  CHECK(type_str(r, 2) == "f32[1]");
  CHECK(vals<float>(r.out(0)) == std::vector<float>{0, 1, 2});
  CHECK(vals<float>(r.out(1)) == std::vector<float>{3, 4, 5});
  CHECK(vals<float>(r.out(2)) == std::vector<float>{6});
}

TEST_CASE("Split: explicit sizes along axis 1") {
  Tensor x = iota_f32({2, 5});
  Run r = run_op("Split", {in(x), cst(i64s({2, 3}))}, {{"axis", 1}}, 2);
  REQUIRE_OK(r);
  CHECK(type_str(r, 1) == "f32[2, 3]");
  CHECK(vals<float>(r.out(0)) == std::vector<float>{0, 1, 5, 6});
  CHECK(vals<float>(r.out(1)) == std::vector<float>{2, 3, 4, 7, 8, 9});
  check_error(run_op("Split", {in(x), in(i64s({2, 2}))}, {{"axis", 1}}, 2).status, "sum");
  check_error(run_op("Split", {in(x), in(i64s({2, 2, 1}))}, {{"axis", 1}}, 2).status, "outputs");
}

// ------------------------------------------------------------------------------------------------
// Expand, Tile

TEST_CASE("Expand: bidirectional broadcast") {
  Tensor x = tensor<float>({3, 1}, {1, 2, 3});
  Run r = run_op("Expand", {in(x), cst(i64s({2, 1, 4}))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "f32[2, 3, 4]");
  std::vector<float> expected;
  for (int a = 0; a < 2; ++a)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 4; ++j) expected.push_back(static_cast<float>(i + 1));
  CHECK(vals<float>(r.out()) == expected);
  // A shape smaller than the input keeps the input's dims.
  r = run_op("Expand", {in(iota_f32({3, 4})), in(i64s({1}))});
  REQUIRE_OK(r);
  CHECK(r.out().shape() == Shape{3, 4});
  CHECK(vals<float>(r.out()) == vals<float>(iota_f32({3, 4})));
}

TEST_CASE("Expand: incompatible dims and huge shapes are errors") {
  check_error(run_op("Expand", {in(iota_f32({3})), in(i64s({4}))}).status, "broadcast");
  check_error(run_op("Expand", {in(iota_f32({3})), cst(i64s({4}))}).status, "broadcast");
  check_error(run_op("Expand", {in(iota_f32({1})), in(i64s({65536, 65536}))}).status, "2^31");
  check_error(run_op("Expand", {in(iota_f32({1})), in(i64s({kI64Max, kI64Max}))}).status, "2^31");
  check_error(run_op("Expand", {in(iota_f32({1})), in(i64s({-2}))}).status, "negative");
}

TEST_CASE("Tile: matches a naive modulo loop") {
  Tensor x = iota_f32({2, 3});
  Run r = run_op("Tile", {in(x), cst(i64s({2, 2}))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "f32[4, 6]");
  std::vector<float> expected;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 6; ++j) expected.push_back(static_cast<float>((i % 2) * 3 + j % 3));
  CHECK(vals<float>(r.out()) == expected);
  r = run_op("Tile", {in(x), in(i64s({1, 0}))});
  REQUIRE_OK(r);
  CHECK(r.out().shape() == Shape{2, 0});
  check_error(run_op("Tile", {in(x), in(i64s({1 << 20, 1 << 20}))}).status, "2^31");
  check_error(run_op("Tile", {in(x), in(i64s({kI64Max, 2}))}).status, "overflow");
  check_error(run_op("Tile", {in(x), in(i64s({2}))}).status, "rank");
  check_error(run_op("Tile", {in(x), in(i64s({2, -1}))}).status, "negative");
}

// ------------------------------------------------------------------------------------------------
// Gather family

TEST_CASE("Gather: axis 1 with negative and i32 indices") {
  Tensor x = iota_f32({2, 3});
  Run r = run_op("Gather", {in(x), cst(tensor<int32_t>({2, 2}, {2, -3, 1, 1}))}, {{"axis", 1}});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "f32[2, 2, 2]");
  // numpy: np.arange(6.).reshape(2,3)[:, [[2, 0], [1, 1]]]
  CHECK(vals<float>(r.out()) == std::vector<float>{2, 0, 1, 1, 5, 3, 4, 4});
  r = run_op("Gather", {in(x), cst(Tensor::scalar<int64_t>(-1))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "f32[3]");
  CHECK(vals<float>(r.out()) == std::vector<float>{3, 4, 5});
}

TEST_CASE("Gather: out-of-range index is an error") {
  Tensor x = iota_f32({2, 3});
  check_error(run_op("Gather", {in(x), in(i64s({0, 3}))}, {{"axis", 1}}).status, "out of range");
  check_error(run_op("Gather", {in(x), in(i64s({-3}))}).status, "out of range");
  check_error(run_op("Gather", {in(x), cst(i64s({2}))}).status, "out of range");
  check_error(run_op("Gather", {in(x), in(i64s({0}))}, {{"axis", 2}}).status, "axis");
}

TEST_CASE("GatherElements: take_along_axis") {
  Tensor x = tensor<float>({2, 2}, {1, 2, 3, 4});
  // numpy: np.take_along_axis([[1,2],[3,4]], [[0,0],[1,0]], 1) -> [[1, 1], [4, 3]]
  Run r = run_op("GatherElements", {in(x), in(tensor<int64_t>({2, 2}, {0, 0, -1, 0}))}, {{"axis", 1}});
  REQUIRE_OK(r);
  CHECK(vals<float>(r.out()) == std::vector<float>{1, 1, 4, 3});
  check_error(
      run_op("GatherElements", {in(x), in(tensor<int64_t>({2, 2}, {0, 2, 0, 0}))}, {{"axis", 1}}).status,
      "out of range");
  check_error(run_op("GatherElements", {in(x), in(tensor<int64_t>({3, 1}, {0, 0, 0}))}, {{"axis", 1}}).status,
              "exceed");
}

TEST_CASE("GatherND: batch_dims 0 and 1 (ONNX examples)") {
  Tensor d = iota_i64({2, 2, 2});  // [[[0,1],[2,3]],[[4,5],[6,7]]]
  // data[0,1] = [2,3], data[1,0] = [4,5]
  Run r = run_op("GatherND", {in(d), in(tensor<int64_t>({2, 2}, {0, 1, 1, 0}))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "i64[2, 2]");
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{2, 3, 4, 5});
  // batch_dims = 1: [data[0][1], data[1][0]] = [[2,3],[4,5]]
  r = run_op("GatherND", {in(d), in(tensor<int32_t>({2, 1}, {1, 0}))}, {{"batch_dims", 1}});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "i64[2, 2]");
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{2, 3, 4, 5});
  // Full tuples give elements: data[1,1,0] = 6, data[-1,0,-1] = 5.
  r = run_op("GatherND", {in(d), in(tensor<int64_t>({2, 3}, {1, 1, 0, -1, 0, -1}))});
  REQUIRE_OK(r);
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{6, 5});
  check_error(run_op("GatherND", {in(d), in(tensor<int64_t>({1, 2}, {0, 2}))}).status, "out of range");
  check_error(run_op("GatherND", {in(d), in(tensor<int64_t>({1, 4}, {0, 0, 0, 0}))}).status, "exceed");
}

// ------------------------------------------------------------------------------------------------
// Scatter family

TEST_CASE("ScatterND: none, add and mul reductions") {
  Tensor data = iota_i64({8});
  Tensor idx = tensor<int64_t>({5, 1}, {4, 3, 1, -1, 1});
  Tensor upd = tensor<int64_t>({5}, {9, 10, 11, 12, 13});
  // Loop: for i, u in zip(idx, upd): o[i] += u  -> [0, 25, 2, 13, 13, 5, 6, 19]
  Run r = run_op("ScatterND", {in(data), in(idx), in(upd)}, {{"reduction", "add"}});
  REQUIRE_OK(r);
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{0, 25, 2, 13, 13, 5, 6, 19});
  // o[i] *= u -> [0, 143, 2, 30, 36, 5, 6, 84]
  r = run_op("ScatterND", {in(data), in(idx), in(upd)}, {{"reduction", "mul"}});
  REQUIRE_OK(r);
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{0, 143, 2, 30, 36, 5, 6, 84});
  r = run_op("ScatterND", {in(data), in(tensor<int32_t>({2, 1}, {0, 5})), in(tensor<int64_t>({2}, {-4, -5}))},
             {{"reduction", "max"}});
  REQUIRE_OK(r);
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7});
  r = run_op("ScatterND", {in(data), in(tensor<int32_t>({2, 1}, {0, 5})), in(tensor<int64_t>({2}, {-4, -5}))},
             {{"reduction", "min"}});
  REQUIRE_OK(r);
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{-4, 1, 2, 3, 4, -5, 6, 7});
}

TEST_CASE("ScatterND: slice updates and errors") {
  Tensor data = iota_f32({4, 2, 2});
  Tensor upd = tensor<float>({2, 2, 2}, {-1, -1, -1, -1, -2, -2, -2, -2});
  Run r = run_op("ScatterND", {in(data), in(tensor<int64_t>({2, 1}, {0, 2})), in(upd)});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "f32[4, 2, 2]");
  CHECK(vals<float>(r.out()) ==
        std::vector<float>{-1, -1, -1, -1, 4, 5, 6, 7, -2, -2, -2, -2, 12, 13, 14, 15});
  check_error(run_op("ScatterND", {in(data), in(tensor<int64_t>({2, 1}, {0, 4})), in(upd)}).status,
              "out of range");
  check_error(
      run_op("ScatterND", {in(data), in(tensor<int64_t>({2, 1}, {0, 1})), in(iota_f32({2, 2}))}).status,
      "updates");
  check_error(
      run_op("ScatterND", {in(data), in(tensor<int64_t>({2, 1}, {0, 1})), in(upd)}, {{"reduction", "sub"}})
          .status,
      "reduction");
}

TEST_CASE("ScatterND: f16 add reduction combines in float") {
  Tensor data = Tensor::from_vector<float>({2}, {1.5f, 2.0f}).cast(DType::f16);
  Tensor upd = Tensor::from_vector<float>({2}, {0.25f, 0.5f}).cast(DType::f16);
  Run r =
      run_op("ScatterND", {in(data), in(tensor<int64_t>({2, 1}, {1, 1})), in(upd)}, {{"reduction", "add"}});
  REQUIRE_OK(r);
  REQUIRE(r.out().dtype() == DType::f16);
  CHECK(r.out().to_f32_vector() == std::vector<float>{1.5f, 2.75f});
}

TEST_CASE("ScatterElements: axis 1 with duplicates and reductions") {
  Tensor data = tensor<float>({1, 5}, {1, 2, 3, 4, 5});
  Tensor idx = tensor<int64_t>({1, 3}, {1, -2, 1});
  // add: data[1] = 2 + 1.5 + 3 = 6.5, data[3] = 4 + 2.25 = 6.25
  Run r = run_op("ScatterElements", {in(data), in(idx), in(tensor<float>({1, 3}, {1.5f, 2.25f, 3.0f}))},
                 {{"axis", 1}, {"reduction", "add"}});
  REQUIRE_OK(r);
  CHECK(vals<float>(r.out()) == std::vector<float>{1, 6.5f, 3, 6.25f, 5});
  // max: data[1] = max(2, 3, 6) = 6, data[3] = max(4, 4.5) = 4.5
  r = run_op("ScatterElements", {in(data), in(idx), in(tensor<float>({1, 3}, {3.0f, 4.5f, 6.0f}))},
             {{"axis", 1}, {"reduction", "max"}});
  REQUIRE_OK(r);
  CHECK(vals<float>(r.out()) == std::vector<float>{1, 6, 3, 4.5f, 5});
}

TEST_CASE("ScatterElements: axis 0 (ONNX example) and errors") {
  Tensor data = Tensor::zeros(DType::f32, {3, 3});
  Tensor idx = tensor<int32_t>({2, 3}, {1, 0, 2, 0, 2, 1});
  Tensor upd = tensor<float>({2, 3}, {1.0f, 1.1f, 1.2f, 2.0f, 2.1f, 2.2f});
  Run r = run_op("ScatterElements", {in(data), in(idx), in(upd)});
  REQUIRE_OK(r);
  CHECK(vals<float>(r.out()) == std::vector<float>{2.0f, 1.1f, 0, 1.0f, 0, 2.2f, 0, 2.1f, 1.2f});
  check_error(
      run_op("ScatterElements", {in(data), in(tensor<int32_t>({2, 3}, {1, 0, 3, 0, 2, 1})), in(upd)}).status,
      "out of range");
  check_error(run_op("ScatterElements", {in(data), in(idx), in(iota_f32({3, 2}))}).status, "shape");
}

// ------------------------------------------------------------------------------------------------
// Pad

TEST_CASE("Pad: constant, reflect, edge and wrap match numpy.pad") {
  Tensor a = tensor<int64_t>({2, 2}, {1, 2, 3, 4});
  // np.pad([[1,2],[3,4]], ((1,0),(0,2)), constant_values=9)
  Run r = run_op("Pad", {in(a), cst(i64s({1, 0, 0, 2})), cst(Tensor::scalar<int64_t>(9))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "i64[3, 4]");
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{9, 9, 9, 9, 1, 2, 9, 9, 3, 4, 9, 9});

  Tensor b = tensor<int64_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  // np.pad(b, ((0,0),(2,1)), 'reflect') -> [[3,2,1,2,3,2],[6,5,4,5,6,5]]
  r = run_op("Pad", {in(b), cst(i64s({0, 2, 0, 1}))}, {{"mode", "reflect"}});
  REQUIRE_OK(r);
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{3, 2, 1, 2, 3, 2, 6, 5, 4, 5, 6, 5});
  // np.pad(b, ((1,1),(1,0)), 'edge')
  r = run_op("Pad", {in(b), cst(i64s({1, 1, 1, 0}))}, {{"mode", "edge"}});
  REQUIRE_OK(r);
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{1, 1, 2, 3, 1, 1, 2, 3, 4, 4, 5, 6, 4, 4, 5, 6});
  // np.pad(b, ((1,0),(2,2)), 'wrap')
  r = run_op("Pad", {in(b), cst(i64s({1, 2, 0, 2}))}, {{"mode", "wrap"}});
  REQUIRE_OK(r);
  CHECK(vals<int64_t>(r.out()) ==
        std::vector<int64_t>{5, 6, 4, 5, 6, 4, 5, 2, 3, 1, 2, 3, 1, 2, 5, 6, 4, 5, 6, 4, 5});
  // np.pad([1,2,3], (7,8), 'reflect'): pads longer than the axis reflect periodically.
  r = run_op("Pad", {in(tensor<int64_t>({3}, {1, 2, 3})), in(i64s({7, 8}))}, {{"mode", "reflect"}});
  REQUIRE_OK(r);
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{2, 3, 2, 1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3});
}

TEST_CASE("Pad: negative pads crop, axes select dims") {
  // np.pad(np.arange(5)[1:], (0, 2), 'edge') -> [1, 2, 3, 4, 4, 4]
  Run r = run_op("Pad", {in(iota_i64({5})), cst(i64s({-1, 2}))}, {{"mode", "edge"}});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "i64[6]");
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{1, 2, 3, 4, 4, 4});
  // axes = [-1]: only the last dim, constant 0; f16 value via constant_value of the data dtype.
  Tensor x = Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4}).cast(DType::f16);
  Tensor c = Tensor::scalar<float>(-0.5f).cast(DType::f16);
  r = run_op("Pad", {in(x), cst(i64s({1, -1})), cst(c), cst(i64s({-1}))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "f16[2, 2]");
  CHECK(r.out().to_f32_vector() == std::vector<float>{-0.5f, 1, -0.5f, 3});
}

TEST_CASE("Pad: cropping beyond the input and bad pads are errors") {
  Tensor x = iota_f32({3});
  check_error(run_op("Pad", {in(x), in(i64s({-2, -2}))}).status, "remove more");
  check_error(run_op("Pad", {in(x), in(i64s({-4, 5}))}).status, "remove more");
  check_error(run_op("Pad", {in(x), cst(i64s({-2, -2}))}).status, "remove more");
  check_error(run_op("Pad", {in(x), in(i64s({1}))}).status, "pads");
  check_error(
      run_op("Pad", {in(Tensor::empty(DType::f32, {0})), in(i64s({1, 1}))}, {{"mode", "edge"}}).status,
      "empty");
  check_error(run_op("Pad", {in(x), in(i64s({1, 1}))}, {{"mode", "mirror"}}).status, "mode");
}

// ------------------------------------------------------------------------------------------------
// Range, ConstantOfShape, EyeLike

TEST_CASE("Range: float and int, positive and negative delta") {
  // np.arange(1.0, 5.0, 2.0) -> [1, 3]
  Run r = run_op(
      "Range", {cst(Tensor::scalar<float>(1)), cst(Tensor::scalar<float>(5)), cst(Tensor::scalar<float>(2))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "f32[2]");
  CHECK(vals<float>(r.out()) == std::vector<float>{1, 3});
  // np.arange(10, 4, -3) -> [10, 7]
  r = run_op("Range", {in(Tensor::scalar<int32_t>(10)), in(Tensor::scalar<int32_t>(4)),
                       in(Tensor::scalar<int32_t>(-3))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "i32[?]");
  CHECK(vals<int32_t>(r.out()) == std::vector<int32_t>{10, 7});
  // np.arange(-3, 3, 2) -> [-3, -1, 1]
  r = run_op("Range", {cst(Tensor::scalar<int64_t>(-3)), cst(Tensor::scalar<int64_t>(3)),
                       cst(Tensor::scalar<int64_t>(2))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "i64[3]");
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{-3, -1, 1});
  // Empty when the limit is behind the start.
  r = run_op("Range", {in(Tensor::scalar<int64_t>(5)), in(Tensor::scalar<int64_t>(1)),
                       in(Tensor::scalar<int64_t>(1))});
  REQUIRE_OK(r);
  CHECK(r.out().numel() == 0);
}

TEST_CASE("Range: zero delta and huge counts are errors") {
  check_error(run_op("Range", {in(Tensor::scalar<int64_t>(0)), in(Tensor::scalar<int64_t>(5)),
                               in(Tensor::scalar<int64_t>(0))})
                  .status,
              "delta");
  check_error(run_op("Range", {in(Tensor::scalar<int64_t>(kI64Min)), in(Tensor::scalar<int64_t>(kI64Max)),
                               in(Tensor::scalar<int64_t>(1))})
                  .status,
              "2^31");
  check_error(run_op("Range", {in(Tensor::scalar<float>(0)), in(Tensor::scalar<float>(1e12f)),
                               in(Tensor::scalar<float>(1))})
                  .status,
              "2^31");
  check_error(run_op("Range", {in(Tensor::scalar<float>(0)), in(Tensor::scalar<float>(INFINITY)),
                               in(Tensor::scalar<float>(1))})
                  .status,
              "2^31");
}

TEST_CASE("ConstantOfShape: value dtype and default") {
  Run r = run_op("ConstantOfShape", {cst(i64s({2, 3}))}, {{"value", Tensor::from_vector<int32_t>({1}, {7})}});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "i32[2, 3]");
  CHECK(vals<int32_t>(r.out()) == std::vector<int32_t>(6, 7));
  r = run_op("ConstantOfShape", {in(i64s({2}))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "f32[?]");
  CHECK(vals<float>(r.out()) == std::vector<float>{0, 0});
  r = run_op("ConstantOfShape", {in(Tensor::empty(DType::i64, {0}))});
  REQUIRE_OK(r);
  CHECK(r.out().rank() == 0);
  check_error(run_op("ConstantOfShape", {in(i64s({1 << 20, 1 << 20}))}).status, "2^31");
  check_error(run_op("ConstantOfShape", {in(i64s({kI64Max, kI64Max, kI64Max}))}).status, "2^31");
  check_error(run_op("ConstantOfShape", {in(i64s({2, -1}))}).status, "negative");
}

TEST_CASE("EyeLike: k and dtype") {
  Tensor x = iota_f32({3, 4});
  // np.eye(3, 4, k=1)
  Run r = run_op("EyeLike", {in(x)}, {{"k", 1}, {"dtype", 7}});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "i64[3, 4]");
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1});
  r = run_op("EyeLike", {in(Tensor::zeros(DType::f16, {2, 2}))}, {{"k", -1}});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "f16[2, 2]");
  CHECK(vals<uint16_t>(r.out()) == std::vector<uint16_t>{0, 0, 0x3C00, 0});  // f16 1.0 = 0x3C00
  r = run_op("EyeLike", {in(x)}, {{"k", kI64Max}});
  REQUIRE_OK(r);
  CHECK(vals<float>(r.out()) == std::vector<float>(12, 0.0f));
  check_error(run_op("EyeLike", {in(x)}, {{"dtype", 8}}).status, "dtype");
  check_error(run_op("EyeLike", {in(iota_f32({3}))}).status, "2-D");
}

// ------------------------------------------------------------------------------------------------
// Trilu, OneHot, NonZero, Compress, ReverseSequence

TEST_CASE("Trilu: upper and lower with k over a batch, naive loop") {
  Tensor x = iota_i64({2, 3, 4});
  for (int upper = 0; upper <= 1; ++upper) {
    for (int64_t k : {int64_t{-1}, int64_t{0}, int64_t{2}, kI64Min}) {
      Run r = run_op("Trilu", {in(x), cst(Tensor::scalar<int64_t>(k))}, {{"upper", upper}});
      REQUIRE_OK(r);
      std::vector<int64_t> expected;
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t i = 0; i < 3; ++i)
          for (int64_t j = 0; j < 4; ++j) {
            const bool keep = upper ? (j - i >= k) : (j - i <= k);
            expected.push_back(keep ? b * 12 + i * 4 + j : 0);
          }
      CHECK(vals<int64_t>(r.out()) == expected);
    }
  }
  Run r = run_op("Trilu", {in(iota_i64({2, 2}))});  // default: upper, k = 0
  REQUIRE_OK(r);
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{0, 1, 0, 3});
  check_error(run_op("Trilu", {in(iota_i64({3}))}).status, "rank");
}

TEST_CASE("OneHot: negative indices, out-of-range rows and axis") {
  // indices [1, -1, 5, 0], depth 4, values [0, 3]: -1 -> class 3, 5 -> all off.
  Run r = run_op(
      "OneHot", {in(i64s({1, -1, 5, 0})), cst(Tensor::scalar<int64_t>(4)), in(tensor<int32_t>({2}, {0, 3}))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "i32[4, 4]");
  CHECK(vals<int32_t>(r.out()) == std::vector<int32_t>{0, 3, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 3, 0, 0, 0});
  // axis 0, float depth: out[v, i, j] = 1 where v = indices[i, j] (mod depth when negative).
  r = run_op("OneHot",
             {in(tensor<int32_t>({2, 2}, {1, -1, 5, 0})), in(Tensor::scalar<float>(3.0f)),
              in(tensor<float>({2}, {0, 1}))},
             {{"axis", 0}});
  REQUIRE_OK(r);
  CHECK(r.out().shape() == Shape{3, 2, 2});
  CHECK(vals<float>(r.out()) == std::vector<float>{0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0});
  check_error(
      run_op("OneHot", {in(i64s({1})), in(Tensor::scalar<int64_t>(-2)), in(tensor<float>({2}, {0, 1}))})
          .status,
      "negative");
  check_error(run_op("OneHot", {in(i64s({1})), in(Tensor::scalar<int64_t>(int64_t{1} << 40)),
                                in(tensor<float>({2}, {0, 1}))})
                  .status,
              "2^31");
}

TEST_CASE("NonZero: coordinates of non-zero elements") {
  // np.array(np.nonzero([[1,0],[0,3],[2,0]])) -> [[0,1,2],[0,1,0]]
  Run r = run_op("NonZero", {in(tensor<float>({3, 2}, {1, 0, 0, 3, 2, -0.0f}))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "i64[2, ?]");
  CHECK(r.out().shape() == Shape{2, 3});
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{0, 1, 2, 0, 1, 0});
  r = run_op("NonZero", {in(Tensor::from_vector<bool>({4}, {false, true, false, true}))});
  REQUIRE_OK(r);
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{1, 3});
}

TEST_CASE("DepthToSpace (DCR, CRD) and SpaceToDepth match numpy reshape/transpose") {
  Tensor x = iota_i64({1, 8, 2, 2});
  // numpy DCR: x.reshape(1,2,2,2,2,2).transpose(0,3,4,1,5,2).reshape(1,2,4,4)
  Run r = run_op("DepthToSpace", {in(x)}, {{"blocksize", 2}});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "i64[1, 2, 4, 4]");
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{0,  8,  1,  9,  16, 24, 17, 25, 2,  10, 3,
                                                       11, 18, 26, 19, 27, 4,  12, 5,  13, 20, 28,
                                                       21, 29, 6,  14, 7,  15, 22, 30, 23, 31});
  // numpy CRD: x.reshape(1,2,2,2,2,2).transpose(0,1,4,2,5,3).reshape(1,2,4,4)
  r = run_op("DepthToSpace", {in(x)}, {{"blocksize", 2}, {"mode", "CRD"}});
  REQUIRE_OK(r);
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{0,  4,  1,  5,  8,  12, 9,  13, 2,  6,  3,
                                                       7,  10, 14, 11, 15, 16, 20, 17, 21, 24, 28,
                                                       25, 29, 18, 22, 19, 23, 26, 30, 27, 31});
  // numpy: z.reshape(1,2,2,2,2,2).transpose(0,3,5,1,2,4).reshape(1,8,2,2) for z = arange(32).reshape(1,2,4,4)
  r = run_op("SpaceToDepth", {in(iota_i64({1, 2, 4, 4}))}, {{"blocksize", 2}});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "i64[1, 8, 2, 2]");
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{0,  2,  8,  10, 16, 18, 24, 26, 1,  3,  9,
                                                       11, 17, 19, 25, 27, 4,  6,  12, 14, 20, 22,
                                                       28, 30, 5,  7,  13, 15, 21, 23, 29, 31});
  check_error(run_op("DepthToSpace", {in(iota_i64({1, 6, 2, 2}))}, {{"blocksize", 2}}).status, "divisible");
  check_error(run_op("SpaceToDepth", {in(iota_i64({1, 1, 3, 4}))}, {{"blocksize", 2}}).status, "divisible");
}

TEST_CASE("Compress: with and without axis") {
  Tensor c = iota_i64({3, 2});
  Tensor cond = Tensor::from_vector<bool>({3}, {false, true, true});
  // np.compress([0,1,1], c, axis=0) -> [[2,3],[4,5]]
  Run r = run_op("Compress", {in(c), in(cond)}, {{"axis", 0}});
  REQUIRE_OK(r);
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{2, 3, 4, 5});
  // np.compress([1,0], c, axis=-1) -> [[0],[2],[4]]
  r = run_op("Compress", {in(c), in(Tensor::from_vector<bool>({2}, {true, false}))}, {{"axis", -1}});
  REQUIRE_OK(r);
  CHECK(r.out().shape() == Shape{3, 1});
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{0, 2, 4});
  // np.compress([0,1,0,0,1], c) -> [1, 4]
  r = run_op("Compress", {in(c), cst(Tensor::from_vector<bool>({5}, {false, true, false, false, true}))});
  REQUIRE_OK(r);
  CHECK(type_str(r) == "i64[2]");
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{1, 4});
  check_error(
      run_op("Compress", {in(c), in(Tensor::from_vector<bool>({4}, {true, true, true, true}))}, {{"axis", 0}})
          .status,
      "condition");
}

TEST_CASE("ReverseSequence: time-major and batch-major") {
  // x = np.arange(16).reshape(4,4) as [time, batch]; lens [4,3,2,1]: o[:L, b] = x[:L, b][::-1]
  Tensor x = iota_i64({4, 4});
  Run r = run_op("ReverseSequence", {in(x), in(i64s({4, 3, 2, 1}))});
  REQUIRE_OK(r);
  CHECK(vals<int64_t>(r.out()) == std::vector<int64_t>{12, 9, 6, 3, 8, 5, 2, 7, 4, 1, 10, 11, 0, 13, 14, 15});
  // batch_axis 0, time_axis 1 on [2, 3, 2]: row b reversed over its first lens[b] steps (naive loop).
  Tensor y = iota_i64({2, 3, 2});
  r = run_op("ReverseSequence", {in(y), in(i32s({3, 2}))}, {{"batch_axis", 0}, {"time_axis", 1}});
  REQUIRE_OK(r);
  std::vector<int64_t> expected;
  const int64_t lens[2] = {3, 2};
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 3; ++t)
      for (int64_t e = 0; e < 2; ++e) {
        const int64_t src_t = t < lens[b] ? lens[b] - 1 - t : t;
        expected.push_back(b * 6 + src_t * 2 + e);
      }
  CHECK(vals<int64_t>(r.out()) == expected);
  check_error(run_op("ReverseSequence", {in(x), in(i64s({5, 1, 1, 1}))}).status, "sequence_lens");
  check_error(run_op("ReverseSequence", {in(x), in(i64s({1, 1}))}).status, "sequence_lens");
}

// ------------------------------------------------------------------------------------------------
// Inference from constant shape-giving inputs

TEST_CASE("inference: static shapes from constants") {
  auto t = infer_op("Expand", {TensorType(DType::f32, {Dim::symbol("seq"), Dim(1)}), i64s({1, 8})});
  REQUIRE(t.is_ok());
  CHECK(t->at(0).to_string() == "f32[seq, 8]");
  t = infer_op("Tile", {TensorType(DType::f32, {Dim::symbol("seq"), Dim(3)}), i64s({1, 4})});
  REQUIRE(t.is_ok());
  CHECK(t->at(0).to_string() == "f32[seq, 12]");
  t = infer_op("Concat", {TensorType(DType::i64, {Dim(2)}), TensorType(DType::i64, {Dim(1)})}, {{"axis", 0}});
  REQUIRE(t.is_ok());
  CHECK(t->at(0).to_string() == "i64[3]");
  t = infer_op("Gather", {TensorType(DType::i64, {Dim(4)}), Tensor::scalar<int64_t>(1)});
  REQUIRE(t.is_ok());
  CHECK(t->at(0).to_string() == "i64[]");
  t = infer_op("Shape", {TensorType(DType::f32, {Dim::symbol("batch"), Dim::symbol("seq"), Dim(64)})});
  REQUIRE(t.is_ok());
  CHECK(t->at(0).to_string() == "i64[3]");
  t = infer_op("Split", {TensorType(DType::f32, {Dim::symbol("b"), Dim(10)})},
               {{"axis", 1}, {"num_outputs", 4}}, 4);
  REQUIRE(t.is_ok());
  CHECK(t->at(0).to_string() == "f32[b, 3]");
  CHECK(t->at(3).to_string() == "f32[b, 1]");
  t = infer_op("Pad", {TensorType(DType::f32, {Dim::symbol("b"), Dim(10)}), i64s({0, 1, 0, 2})});
  REQUIRE(t.is_ok());
  CHECK(t->at(0).to_string() == "f32[b, 13]");
  t = infer_op("GatherND",
               {TensorType(DType::f32, {Dim(2), Dim(3), Dim(4)}), TensorType(DType::i64, {Dim(5), Dim(2)})});
  REQUIRE(t.is_ok());
  CHECK(t->at(0).to_string() == "f32[5, 4]");
  t = infer_op("OneHot", {TensorType(DType::i64, {Dim::symbol("n")}), Tensor::scalar<int64_t>(10),
                          TensorType(DType::f16, {Dim(2)})});
  REQUIRE(t.is_ok());
  CHECK(t->at(0).to_string() == "f16[n, 10]");
  t = infer_op("Squeeze", {TensorType(DType::f32, {Dim::symbol("b"), Dim(1)})});
  REQUIRE(t.is_ok());
  CHECK(t->at(0).to_string() == "f32[*]");
  t = infer_op("Range", {TensorType(DType::i64, {}), TensorType(DType::i64, {}), TensorType(DType::i64, {})});
  REQUIRE(t.is_ok());
  CHECK(t->at(0).to_string() == "i64[?]");
  t = infer_op("ConstantOfShape", {i64s({2, 3})}, {{"value", Tensor::from_vector<bool>({1}, {true})}});
  REQUIRE(t.is_ok());
  CHECK(t->at(0).to_string() == "bool[2, 3]");
}

// ------------------------------------------------------------------------------------------------
// More bad inputs: each is an error naming the node, never a crash

TEST_CASE("bad inputs: missing required inputs, mismatched dtypes and shapes") {
  Tensor x = iota_f32({2, 3});
  check_error(run_op("Reshape", {in(x), absent()}).status, "missing");
  check_error(run_op("Gather", {in(x), absent()}).status, "missing");
  check_error(run_op("Gather", {in(x), in(tensor<float>({1}, {0}))}).status, "integer");
  check_error(run_op("Split", {in(x)}, {{"num_outputs", 3}}, 2).status, "num_outputs");
  check_error(run_op("Range", {in(Tensor::scalar<int64_t>(0)), in(Tensor::scalar<int32_t>(5)),
                               in(Tensor::scalar<int64_t>(1))})
                  .status,
              "dtype");
  check_error(
      run_op("Compress", {in(x), in(Tensor::from_vector<bool>({1, 1}, {true}))}, {{"axis", 0}}).status,
      "1-D");
  check_error(
      run_op("OneHot", {in(i64s({0})), in(Tensor::scalar<int64_t>(2)), in(tensor<float>({3}, {0, 1, 2}))})
          .status,
      "values");
  Tensor d = iota_i64({2, 2, 2});
  check_error(run_op("GatherND", {in(d), in(tensor<int64_t>({3, 1}, {0, 0, 0}))}, {{"batch_dims", 1}}).status,
              "batch dim");
  check_error(run_op("ScatterElements", {in(x), in(tensor<int64_t>({3, 1}, {0, 0, 0})), in(iota_f32({3, 1}))},
                     {{"axis", 1}})
                  .status,
              "exceed");
  check_error(
      run_op("ScatterND", {in(x), in(tensor<int64_t>({1, 1}, {0})), in(tensor<int64_t>({1, 3}, {1, 2, 3}))})
          .status,
      "dtype");
  check_error(run_op("DepthToSpace", {in(iota_i64({1, 4, 2}))}, {{"blocksize", 2}}).status, "4-D");
  check_error(run_op("DepthToSpace", {in(iota_i64({1, 4, 2, 2}))}, {{"blocksize", 0}}).status, "blocksize");
}

TEST_CASE("Slice, Gather and Pad on zero-size inputs") {
  Tensor empty = Tensor::empty(DType::f32, {0, 3});
  Run r = run_op("Slice", {in(empty), in(i64s({1})), in(i64s({-1})), in(i64s({0})), in(i64s({-1}))});
  REQUIRE_OK(r);
  CHECK(r.out().shape() == Shape{0, 3});
  r = run_op("Gather", {in(empty), in(Tensor::empty(DType::i64, {0}))}, {{"axis", 1}});
  REQUIRE_OK(r);
  CHECK(r.out().shape() == Shape{0, 0});
  r = run_op("Pad", {in(empty), in(i64s({1, 0, 0, 0}))});
  REQUIRE_OK(r);
  CHECK(r.out().shape() == Shape{1, 3});
  CHECK(vals<float>(r.out()) == std::vector<float>{0, 0, 0});
}
