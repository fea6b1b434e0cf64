// A small DAG pattern matcher and the graph helpers rewrite patterns share.
//
// A Pattern describes a value: any value (optionally captured under a name), a constant scalar
// (optionally equal to a number), or the output of an op whose operands match sub-patterns, in order or,
// for commutative ops, in either order. `match_pattern` binds captures (a name used twice must bind the
// same Value; for scalars, the same number) and records the matched nodes; a failed match leaves the
// Match unspecified.
//
//   // softcap: Mul(Tanh(Div(x, c)), c)
//   Pattern p = op("Mul", {op("Tanh", {op("Div", {any("x"), scalar("c")})}), scalar("c")});
//
// Matching never looks through nodes with nested graphs. The helpers below answer the questions every
// rewrite asks: who produced a value, is an intermediate used only once, what does a transpose permute.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "passes/symbolic_dims.h"

namespace seqrun::passes {

struct Pattern {
  enum class Kind { Any, Scalar, Op };
  Kind kind = Kind::Any;
  std::string capture;             // binds the matched value when not empty
  std::string op;                  // Kind::Op
  std::vector<Pattern> operands;   // Kind::Op: matched against the node's explicit inputs
  bool commutative = false;        // Kind::Op with two operands: also try them swapped
  std::optional<double> expected;  // Kind::Scalar: the constant's value (relative tolerance 1e-6)
};

Pattern any(const std::string& capture = "");
// A one-element value computed from constants only (see ShapeReasoner::constant_value).
Pattern scalar(const std::string& capture = "", std::optional<double> expected = std::nullopt);
Pattern op(const std::string& op_name, std::vector<Pattern> operands, const std::string& capture = "");
Pattern commutative(const std::string& op_name, Pattern a, Pattern b, const std::string& capture = "");

struct Match {
  std::map<std::string, Value*> values;
  std::map<std::string, double> scalars;  // the constant value of each captured Scalar
  std::vector<Node*> nodes;               // every matched op node, outermost first
  Value* operator[](const std::string& name) const;
};

bool match_pattern(const Pattern& pattern, Value* value, ShapeReasoner& shapes, Match* match);

// --- graph helpers ---------------------------------------------------------------------------------

// The node that produced v when it is an `op` node without nested graphs (any op when op is empty).
Node* producer(const Value* v, const std::string& op = "");
// v has exactly one use and is not a graph output: a rewrite may drop it.
bool single_use(const Value* v);
// The other operand of a two-input node that has `v` as exactly one operand.
Value* other_operand(const Node* n, const Value* v);
// Transpose's permutation (the reversal when the attribute is absent), or empty when rank is unknown.
std::vector<int64_t> transpose_perm(const Node* transpose);
// A constant integer tensor's values.
std::optional<std::vector<int64_t>> constant_ints(const Value* v);
// A Cast between two float dtypes (f32/f16/bf16/f64): rounding at most, never a change of meaning.
bool is_float_cast(const Node* n);
// When v is a constant, or ConstantOfShape's output, or a Cast/Expand of one, whose elements are all
// equal: that value.
std::optional<double> uniform_value(const Value* v);
// True when `target` is reachable from any of `from` by following producers (inputs of inputs ...).
bool depends_on(const std::vector<Value*>& from, const Value* target);
// Nodes that `from` values transitively depend on (their producers and theirs).
std::vector<Node*> ancestors(const std::vector<Value*>& from);

// Makes `replacement` take `old`'s place: every use, graph-output slot and name moves to it; the old
// value keeps a derived name ("<name>_unfused") until dead-code removal drops it.
void take_place_of(Graph& graph, Value* old, Value* replacement);
// A new i64 constant, named from `base`.
Value* add_i64_constant(Graph& graph, const std::string& base, const std::vector<int64_t>& values);

}  // namespace seqrun::passes
