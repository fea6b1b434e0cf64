// Stateful decoding over a Session: the state convention of sequence graphs, the state of one sequence
// (SequenceState) and StatefulSession, which feeds prompts and single tokens to several independent
// sequences and keeps each one's recurrent state between calls.
//
// The state convention. A graph declares its carried state in one of two ways:
//   1. Metadata (checked first): "seqrun.state_inputs" and "seqrun.state_outputs", comma-separated graph
//      input and output names of equal count, paired by position (input i is fed from output i of the
//      previous run).
//   2. Names: every graph input named "state.<key>" is a state input, paired with the graph output named
//      "new_state.<key>" (RWKV graphs: state.<layer>.{att_shift, wkv, ffn_shift}).
// A state input without its output (or an output without its input, in the metadata form) is an error
// naming it. Each state input has type [batch, d1, d2, ...]: dim 0 is the batch (a symbol or 1), every other
// dim is static (fixed-size state: SSMs, linear attention, RWKV) — except at most one symbolic dim, the
// capacity axis of a growing state (a KV cache [batch, heads, kv_capacity, head_dim]) — and its paired output
// has the same dtype and dims. The all-zero state is the initial state (the state after the empty prefix).
// Besides the state, the graph has one input for the token ids (i64 or i32 [batch, seq]) and, optionally, an
// i64 input named "position" (scalar or [1]) that receives the number of tokens the sequence held before the
// call. Its logits output is the output named "logits", or else the only output that is not state:
// f32 [batch, seq, vocab] (the logits of every position), [batch, 1, vocab] or [batch, vocab] (those of the
// last position).
// A graph that declares no state (GPT-2, Llama and Mamba exports: input_ids -> logits) is first turned into
// its step graph by the derive-decode pass (passes/derive_decode.h: KV caches, SSM state, a position input);
// when that pass cannot derive one (an op without a step form) — or StatefulOptions::derive_decode is off —
// each sequence keeps its token history and every call reruns the graph on the whole history (O(n^2), exact).
//
// Growing state. A KV cache lives in an allocation of its own per sequence, sized in blocks of kv_block
// tokens (growing by at least half its size each time it must grow, never past max_context), and is updated
// in place: the same buffer is bound as the state input and as the state output (CachedAttention writes only
// the new rows; runtime/plan.h lets that output alias that input).
//
// StatefulSession runs each sequence with batch 1. Zero-copy: a sequence's state lives in one persistent
// 64-byte-aligned allocation of its own (two sets of state tensors, "current" and "next", plus its last
// logits); the current set is bound directly as the graph's state inputs and the next set as the outputs
// given to Session::run_into, which the planned executor writes in place; then the two swap. A steady decode
// loop therefore allocates nothing for state (outputs an executor did not write in place are copied in).
// max_context bounds the tokens one sequence may hold; it is checked before anything runs, so that error
// leaves the sequence unchanged (after any other failed run, reset() or restore() the sequence).
// Not thread-safe: one thread drives a StatefulSession at a time (the Session underneath may be shared).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"
#include "ir/tensor.h"
#include "runtime/session.h"

namespace seqrun::runtime {

inline constexpr const char* kStateInputsKey = "seqrun.state_inputs";
inline constexpr const char* kStateOutputsKey = "seqrun.state_outputs";

// One carried state tensor: which graph input receives it, which graph output produces the next one.
struct StateSlot {
  std::string input_name;
  std::string output_name;
  int input_index = -1;   // position among the graph's inputs
  int output_index = -1;  // position among the graph's outputs
  DType dtype = DType::f32;
  Shape shape;         // with batch 1 (and 0 at the grow axis)
  int grow_axis = -1;  // the capacity axis of a growing state (KV cache), -1 for fixed-size state
};

// How a graph takes tokens and carries state (see the convention above).
struct StateSignature {
  int token_input = -1;  // position of the token ids among the graph's inputs
  std::string token_input_name;
  DType token_dtype = DType::i64;
  int logits_output = -1;  // position of the logits among the graph's outputs
  std::string logits_output_name;
  bool logits_per_position = true;  // [batch, seq, vocab] (true) or [batch, vocab]
  int64_t vocab_size = -1;          // the logits' last dim; -1 when the graph does not say
  std::vector<StateSlot> states;    // empty: the graph is run on the whole history every time
  int position_input = -1;          // the "position" input (tokens before this call), -1 when absent
  bool position_scalar = true;      // its rank: 0 (true) or 1

  bool stateful() const { return !states.empty(); }
  int64_t state_bytes() const;  // one sequence's state (one set)
};

// Reads the convention off a graph and its model metadata; errors name the input or output at fault.
Result<StateSignature> find_state_signature(const Graph& graph,
                                            const std::map<std::string, std::string>& metadata);

// The state of one sequence, by value (snapshot() deep-copies; restore() copies back): what it needs to
// continue exactly where it was, including the logits for sampling its next token.
struct SequenceState {
  std::vector<Tensor> states;    // in StateSignature::states order, batch 1
  int64_t token_count = 0;       // tokens fed so far
  std::vector<int32_t> history;  // the tokens themselves, kept only for graphs without state
  Tensor logits;                 // f32[vocab] after the last token; undefined when token_count is 0
};

struct StatefulOptions {
  int64_t max_context = 0;    // most tokens one sequence may hold; 0 = no bound
  int64_t prefill_chunk = 0;  // prompt tokens per graph run when prefilling stateful graphs; 0 = all at once
  bool derive_decode = true;  // derive a step graph for graphs without state (else rerun the history)
  int64_t kv_block = 256;     // KV-cache capacity granularity, in tokens
};

class StatefulSession {
 public:
  // `session` must outlive the StatefulSession. The convention is read from session.graph() and
  // session.metadata().
  static Result<std::unique_ptr<StatefulSession>> create(const Session& session,
                                                         const StatefulOptions& options = {});
  ~StatefulSession();
  StatefulSession(const StatefulSession&) = delete;
  StatefulSession& operator=(const StatefulSession&) = delete;

  const StateSignature& signature() const { return signature_; }
  const StatefulOptions& options() const { return options_; }
  // The session the sequences run on: the given one, or the derived step graph's (see above).
  const Session& session() const { return *session_; }
  // Why no step graph was derived for a graph without state ("" when one was, or none was needed).
  const std::string& derive_note() const { return derive_note_; }

  // A new sequence at the initial state; ids count up from 0 and are never reused.
  int add_sequence();
  Status remove_sequence(int seq_id);
  Status reset(int seq_id);  // back to the initial state, no tokens
  std::vector<int> sequence_ids() const;

  // Feeds `tokens` to the sequence (the prompt, or more of it: a sequence may be prefilled several times)
  // and returns the logits after the last one, f32[vocab]. The returned tensor is the sequence's own logits
  // buffer: the next prefill/step/restore of this sequence overwrites it (clone() to keep it).
  Result<Tensor> prefill(int seq_id, const std::vector<int32_t>& tokens);
  // Feeds one token (a run with seq = 1); returns the logits after it, like prefill.
  Result<Tensor> step(int seq_id, int32_t token);

  // Builds (and caches in the Session) the execution plans that a prefill of `prompt_tokens` tokens and the
  // steps after it use, so that timing them measures the runs alone. Optional: runs build missing plans.
  Status prepare(int64_t prompt_tokens);

  // The sequence's logits after its last token (undefined tensor before any token).
  Result<Tensor> last_logits(int seq_id) const;
  Result<int64_t> token_count(int seq_id) const;
  // Handles to the sequence's current state tensors (views into its persistent allocation).
  Result<std::vector<Tensor>> states(int seq_id) const;

  // State outputs that the executor did not write in place and that were copied into the persistent buffers
  // instead (the reference executor allocates its outputs; the planned one writes in place: 0).
  int64_t copied_state_outputs() const { return copied_state_outputs_; }

  Result<SequenceState> snapshot(int seq_id) const;
  // Copies `state` into the sequence; its tensors must have the signature's dtypes and shapes.
  Status restore(int seq_id, const SequenceState& state);

 private:
  struct Sequence;
  StatefulSession(const Session& session, std::unique_ptr<Session> derived, StateSignature signature,
                  const StatefulOptions& options);
  Result<Sequence*> find(int seq_id) const;
  // One graph run of `count` tokens starting at `tokens` (stateful graphs) or of the whole history.
  Status run_chunk(int seq_id, Sequence& seq, const int32_t* tokens, int64_t count);
  Status check_tokens(int seq_id, const std::vector<int32_t>& tokens) const;
  // Grows the sequence's KV caches to hold `tokens` tokens (block-rounded, see above).
  void ensure_capacity(Sequence& seq, int64_t tokens) const;
  int64_t capacity_for(int64_t tokens, int64_t current) const;

  std::unique_ptr<Session> derived_;  // the step graph's session, when one was derived
  const Session* session_;
  std::string derive_note_;
  StateSignature signature_;
  StatefulOptions options_;
  std::map<int, std::unique_ptr<Sequence>> sequences_;
  int next_id_ = 0;
  int64_t copied_state_outputs_ = 0;
};

}  // namespace seqrun::runtime
