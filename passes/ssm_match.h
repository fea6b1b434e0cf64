// fuse-ssm-scan's matcher: finds a selective scan written in primitive ops and says exactly what it
// computes, in terms of SelectiveScan's inputs (internal to passes/; see fuse_ssm_scan.h for the forms).
//
// Matching works on axis labels. Every tensor of a selective scan is indexed by some of four axes —
// batch B, channel D, state N, sequence L — in whatever order and with whatever broadcast (size-1)
// dims the model wrote. A Ref is a value plus one label per dim ('B', 'D', 'N', 'L', or '1' for a
// size-1 dim). Labels flow from the recurrence's state h (its layout is tried in every order) down
// into the decay and input terms through broadcasting binary ops and pure layout ops (Unsqueeze,
// Squeeze, Transpose, Reshape that only moves 1s, Expand, the step slice x[.., t, ..] of a loop
// body), and forward from h through the readout and the epilogues. A leaf is where the walk stops;
// its labels say which SelectiveScan input it is and how to transpose it there. Because each check is
// about what is computed (which axes a product varies along, which axis a sum runs over, which step
// a loop reads and writes), a successful match is the selective scan, whatever the layout.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "passes/ssm_index_eval.h"

namespace seqrun::passes::ssm {

using Labels = std::string;  // one of "BDNL1" per dim

// Where a value lives: the top graph, or the body of the Loop/Scan node being matched.
struct Scope {
  const Graph* graph = nullptr;
  Node* owner = nullptr;  // the Loop/Scan (in the top graph) whose body this is; null at the top
  const Scope* outer = nullptr;
  const Value* iteration = nullptr;                            // Loop body: the iteration-number input
  std::map<const Value*, std::pair<Value*, int>> scan_slices;  // Scan body input -> (outer value, axis)
  bool is_top() const { return owner == nullptr; }
};

struct Ref {
  Value* value = nullptr;
  Labels labels;
  const Scope* scope = nullptr;
  bool expand = false;  // some dim's size is unknown: broadcast it explicitly when rewriting
};

// What one match computes, as SelectiveScan's inputs, and what it replaces.
struct SsmMatch {
  Ref u, delta, A, Bm, Cm;
  bool negate_A = false;  // the decay is exp(-(Δ·leaf)): SelectiveScan's A is the A leaf negated
  std::optional<Ref> dskip, z, delta_bias, h0;
  bool delta_softplus = false;
  Ref y;                      // top-graph value the new y replaces (with its labels)
  std::optional<Ref> h;       // top-graph value the new final state replaces
  std::map<char, Dim> sizes;  // B, D, N, L
  DType dtype = DType::f32;   // of every input and output
  std::vector<Node*> nodes;   // top-graph nodes of the pattern (all dead after the rewrite)
};

// One reading of a value as a product of leaves.
struct Factoring {
  std::vector<Ref> leaves;
  bool negative = false;     // an odd number of Neg on the way
  std::vector<Node*> nodes;  // the Mul/Neg nodes expanded (top graph only)
};

// A stage of the forward walk after the readout: what the output is after it and what it adds.
struct Stage {
  Ref root;
  int level = 0;             // 0 raw readout, 1 with D skip, 2 gated
  std::vector<Node*> chain;  // top-graph nodes that must die for the stage to be worth fusing
  std::vector<Node*> side;   // top-graph nodes that may die (the D·u product, the gate's Sigmoid)
  std::optional<Ref> dskip, z;
};

class Matcher {
 public:
  explicit Matcher(const Graph& top) { top_scope_.graph = &top; }
  // The scan around a LinearRecurrence node, an ONNX Loop or an ONNX Scan, or nullopt.
  std::optional<SsmMatch> match(Node* node);

 private:
  // One attempt under one hypothesis for the state's layout.
  struct Attempt {
    SsmMatch m;
    std::vector<Node*> required;  // top-graph nodes that must die
    std::vector<Node*> optional;  // top-graph nodes that may stay alive (layout ops near leaves)
  };

  // A forward walk: the stages reached and where it stopped.
  struct Walk {
    std::vector<Stage> stages;  // stages[0] is the starting point
    Ref end;                    // the value after the last stage and any layout ops after it
  };
  // How a Loop/Scan body is laid out around the state slot being matched.
  struct BodyInfo {
    bool is_loop = false;
    int num_carried = 0;  // Loop: carried values; Scan: states
    Dim seq_len;          // the trip count / scan length
  };

  std::optional<SsmMatch> match_linear_recurrence(Node* node);
  std::optional<SsmMatch> match_loop(Node* node);
  std::optional<SsmMatch> match_scan(Node* node);
  // The recurrence inside a body: h_new = a ⊙ h_prev + b, for carried slot h_prev -> h_new.
  std::optional<SsmMatch> match_body(Node* node, const Scope& scope, const BodyInfo& info, Value* h_prev,
                                     Value* h_new, Value* h_init, Value* h_final);

  // Decay a = exp(Δ·A) and input b = Δ·u·B, given Refs for a and b labelled like the state.
  bool match_terms(Attempt& at, const Ref& a, const Ref& b);
  // Readout from the state: Σ_N h·C (Mul + ReduceSum) or h @ C (MatMul); the y Ref after it.
  std::optional<Ref> match_readout(Attempt& at, const Ref& h);
  // SiLU(z) as Silu(z), Swish(z) or z·Sigmoid(z); the z leaf.
  std::optional<Ref> match_gate(Attempt& at, const Ref& g, std::vector<Node*>* side);
  // One epilogue (D skip at level 0, gate at level <= 1) applied to y by `user`.
  std::optional<Stage> step_epilogue(Attempt& at, int level, const Ref& y, Node* user);
  // Forward walk from `first` through layout ops and epilogues while each value has one user.
  Walk walk_epilogues(Attempt& at, const Stage& first);
  // Picks the longest stage whose chain dies; fills at.m from it. False when not even stage 0 works.
  bool settle(Attempt& at, const std::vector<Stage>& stages);
  // Takes Softplus (and a per-channel bias Add before it) into the op when they die with the pattern.
  void fold_softplus(Attempt& at);
  // The top-graph value a body's per-step y ends up in (scan output or ScatterND buffer), labelled.
  std::optional<Ref> body_result(Node* node, const Scope& scope, const BodyInfo& info, const Ref& end);

  // --- label walks (ssm_labels.cpp) ---
  // Follows r down through layout ops, captures and step slices (into the outer graph) to the value
  // that computes it; top-graph layout nodes passed are appended to `visited`.
  Ref strip(Ref r, std::vector<Node*>* visited);
  // Every way to read r as a product of at most `max_leaves` factors: Mul trees cut at any depth,
  // Neg pulled out as a sign. The first entry is r itself (one leaf).
  std::vector<Factoring> factorings(const Ref& r, int max_leaves, int depth = 0);
  std::optional<Ref> forward_layout(const Ref& r, Node* user);
  bool check_leaf(Ref& leaf, const std::string& target, const std::map<char, Dim>& sizes) const;
  std::optional<std::vector<int64_t>> constant_ints(const Value* v, const Scope* scope);
  std::optional<Shape> shape_of(const Ref& r, const std::map<char, Dim>& sizes) const;

  // True when every node of `must` is dead once the `replaced` values lose their uses (only nodes of
  // `pattern` can die; everything else is assumed to stay).
  bool all_die(const std::vector<Node*>& must, const std::vector<Node*>& pattern,
               const std::vector<Value*>& replaced) const;

  Scope top_scope_;
  std::vector<std::unique_ptr<Scope>> body_scopes_;  // outlive the matches that point into them
  Attempt* cur_ = nullptr;                           // the attempt being matched (its sizes, dtype, nodes)
  std::map<const Scope*, AffineEvaluator> evaluators_;
};

std::vector<Node*> node_users(const Value* v);      // distinct nodes using v
Node* producer_op(const Value* v, const char* op);  // v's producer when it is `op` (no bodies)
Value* other_input(const Node* n, const Value* v);  // the other operand of a binary node using v once
// Labels of `operand` broadcast (numpy, right-aligned) into a result labelled `out`; nullopt when the
// operand has a dim the result does not (it would grow the result).
std::optional<Labels> operand_labels(const Labels& out, const Value* operand);
bool has_label(const Labels& l, char c);
// Ref equality for leaves: same value, same labels once size-1 dims are dropped.
bool same_leaf(const Ref& a, const Ref& b);

}  // namespace seqrun::passes::ssm
