// Stateful sessions: reads the state convention off a graph, keeps each sequence's state in its own
// persistent allocation, and runs prefill / step by binding that state directly as inputs and outputs.
#include "runtime/state.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <set>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "passes/derive_decode.h"

namespace seqrun::runtime {

namespace {

constexpr size_t kStateAlignment = 64;

size_t align_up(size_t n) {
  return (n + kStateAlignment - 1) / kStateAlignment * kStateAlignment;
}

// "a, b,c" -> {"a", "b", "c"}; empty items are dropped.
std::vector<std::string> split_names(const std::string& list) {
  std::vector<std::string> names;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string item = list.substr(start, end - start);
    const size_t first = item.find_first_not_of(" \t");
    if (first != std::string::npos) {
      item = item.substr(first, item.find_last_not_of(" \t") - first + 1);
      names.push_back(item);
    }
    start = end + 1;
  }
  return names;
}

std::string join_quoted(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "'" : ", '") + n + "'";
  return out.empty() ? "none" : out;
}

int index_of(const std::vector<Value*>& values, const std::string& name) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i]->name() == name) return static_cast<int>(i);
  }
  return -1;
}

std::vector<std::string> names_of(const std::vector<Value*>& values) {
  std::vector<std::string> names;
  for (const Value* v : values) names.push_back(v->name());
  return names;
}

// Checks one state pair's types and fills slot.dtype / slot.shape (batch 1).
Status check_state_pair(const Value& input, const Value& output, StateSlot& slot) {
  const TensorType& in = input.type();
  if (!in.has_rank() || in.rank() < 1) {
    return make_error("state input '{}' has type {}; a state needs a rank of at least 1 (batch first)",
                      input.name(), in.to_string());
  }
  const Dim& batch = in.dim(0);
  if (!(batch.is_symbol() || (batch.is_static() && batch.value() == 1))) {
    return make_error("state input '{}' has batch dim {}; sequences run with batch 1 (use a symbol or 1)",
                      input.name(), batch.to_string());
  }
  slot.shape = {1};
  for (int d = 1; d < in.rank(); ++d) {
    const Dim& dim = in.dim(d);
    if (!dim.is_static()) {
      if (!dim.is_symbol() || slot.grow_axis >= 0) {
        return make_error(
            "state input '{}' has type {}: dim {} ('{}') is not static (a state may have one symbolic dim, "
            "the "
            "capacity of a growing state such as a KV cache)",
            input.name(), in.to_string(), d, dim.to_string());
      }
      slot.grow_axis = d;
      slot.shape.push_back(0);
      continue;
    }
    slot.shape.push_back(dim.value());
  }
  slot.dtype = in.dtype();
  const TensorType& out = output.type();
  if (out.dtype() != in.dtype()) {
    return make_error("state output '{}' is {} but its input '{}' is {}", output.name(),
                      dtype_name(out.dtype()), input.name(), dtype_name(in.dtype()));
  }
  if (out.has_rank()) {
    bool same = out.rank() == in.rank();
    for (int d = 1; same && d < in.rank(); ++d) {
      same = !out.dim(d).is_static() || (in.dim(d).is_static() && out.dim(d).value() == in.dim(d).value());
    }
    if (!same) {
      return make_error("state output '{}' has type {} but its input '{}' has {}", output.name(),
                        out.to_string(), input.name(), in.to_string());
    }
  }
  return Status::ok();
}

}  // namespace

int64_t StateSignature::state_bytes() const {
  int64_t bytes = 0;
  for (const StateSlot& s : states)
    bytes += num_elements(s.shape) * static_cast<int64_t>(dtype_size(s.dtype));
  return bytes;
}

Result<StateSignature> find_state_signature(const Graph& graph,
                                            const std::map<std::string, std::string>& metadata) {
  const std::vector<Value*>& inputs = graph.inputs();
  const std::vector<Value*>& outputs = graph.outputs();
  StateSignature sig;

  // 1. Pair state inputs with outputs.
  const auto in_key = metadata.find(kStateInputsKey);
  const auto out_key = metadata.find(kStateOutputsKey);
  if ((in_key == metadata.end()) != (out_key == metadata.end())) {
    return make_error("metadata has '{}' but not '{}' (give both, paired by position)",
                      in_key == metadata.end() ? kStateOutputsKey : kStateInputsKey,
                      in_key == metadata.end() ? kStateInputsKey : kStateOutputsKey);
  }
  if (in_key != metadata.end()) {
    const std::vector<std::string> in_names = split_names(in_key->second);
    const std::vector<std::string> out_names = split_names(out_key->second);
    if (in_names.size() != out_names.size()) {
      return make_error("metadata '{}' names {} inputs but '{}' names {} outputs (they pair by position)",
                        kStateInputsKey, in_names.size(), kStateOutputsKey, out_names.size());
    }
    for (size_t i = 0; i < in_names.size(); ++i) {
      StateSlot slot;
      slot.input_name = in_names[i];
      slot.output_name = out_names[i];
      slot.input_index = index_of(inputs, in_names[i]);
      slot.output_index = index_of(outputs, out_names[i]);
      if (slot.input_index < 0) {
        return make_error("metadata '{}': '{}' is not a graph input (the inputs: {})", kStateInputsKey,
                          in_names[i], join_quoted(names_of(inputs)));
      }
      if (slot.output_index < 0) {
        return make_error("metadata '{}': '{}' is not a graph output (the outputs: {})", kStateOutputsKey,
                          out_names[i], join_quoted(names_of(outputs)));
      }
      sig.states.push_back(slot);
    }
  } else {
    for (size_t i = 0; i < inputs.size(); ++i) {
      const std::string& name = inputs[i]->name();
      if (name.rfind("state.", 0) != 0) continue;
      StateSlot slot;
      slot.input_name = name;
      slot.output_name = "new_" + name;
      slot.input_index = static_cast<int>(i);
      slot.output_index = index_of(outputs, slot.output_name);
      if (slot.output_index < 0) {
        return make_error("state input '{}' has no paired output '{}' (the outputs: {})", name,
                          slot.output_name, join_quoted(names_of(outputs)));
      }
      sig.states.push_back(slot);
    }
    for (const Value* out : outputs) {
      const std::string& name = out->name();
      if (name.rfind("new_state.", 0) == 0 && index_of(inputs, name.substr(4)) < 0) {
        return make_error("state output '{}' has no paired input '{}'", name, name.substr(4));
      }
    }
  }
  std::set<int> state_inputs, state_outputs;
  for (StateSlot& slot : sig.states) {
    if (!state_inputs.insert(slot.input_index).second || !state_outputs.insert(slot.output_index).second) {
      return make_error("state pair '{}' -> '{}' repeats an input or output of another pair", slot.input_name,
                        slot.output_name);
    }
    SEQRUN_TRY(check_state_pair(*inputs[slot.input_index], *outputs[slot.output_index], slot));
  }

  // 2. The position (optional) and the token ids: the one input that is neither state nor position.
  const int position = index_of(inputs, passes::kPositionInputName);
  if (position >= 0 && !sig.states.empty()) {
    const TensorType& t = inputs[position]->type();
    if (t.dtype() != DType::i64 || !t.has_rank() || t.rank() > 1 || (t.rank() == 1 && t.dim(0) != Dim(1))) {
      return make_error("input '{}' has type {}; the position input must be i64 [] or [1]",
                        inputs[position]->name(), t.to_string());
    }
    sig.position_input = position;
    sig.position_scalar = t.rank() == 0;
  }
  std::vector<std::string> others;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (static_cast<int>(i) == sig.position_input) continue;
    if (state_inputs.count(static_cast<int>(i)) == 0) {
      others.push_back(inputs[i]->name());
      sig.token_input = static_cast<int>(i);
    }
  }
  if (others.size() != 1) {
    return make_error(
        "the graph has {} inputs besides its state and position ({}); a sequence graph takes exactly one, "
        "the token ids [batch, seq]",
        others.size(), join_quoted(others));
  }
  const Value& tokens = *inputs[sig.token_input];
  sig.token_input_name = tokens.name();
  sig.token_dtype = tokens.type().dtype();
  if (sig.token_dtype != DType::i64 && sig.token_dtype != DType::i32) {
    return make_error("token input '{}' is {}; token ids must be i64 or i32", tokens.name(),
                      dtype_name(sig.token_dtype));
  }
  if (tokens.type().has_rank() && tokens.type().rank() != 2) {
    return make_error("token input '{}' has type {}; token ids must be [batch, seq]", tokens.name(),
                      tokens.type().to_string());
  }

  // 3. The logits: the output named "logits", or else the only output that is not state.
  others.clear();
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (state_outputs.count(static_cast<int>(i)) > 0) continue;
    others.push_back(outputs[i]->name());
    if (outputs[i]->name() == "logits" || others.size() == 1) sig.logits_output = static_cast<int>(i);
  }
  const bool named_logits = sig.logits_output >= 0 && outputs[sig.logits_output]->name() == "logits";
  if (others.empty() || (others.size() > 1 && !named_logits)) {
    return make_error("the graph has {} outputs besides its state ({}); name the logits output 'logits'",
                      others.size(), join_quoted(others));
  }
  const Value& logits = *outputs[sig.logits_output];
  sig.logits_output_name = logits.name();
  if (!is_float(logits.type().dtype())) {
    return make_error("logits output '{}' is {}; logits must be floating point", logits.name(),
                      dtype_name(logits.type().dtype()));
  }
  if (logits.type().has_rank()) {
    const int rank = logits.type().rank();
    if (rank != 2 && rank != 3) {
      return make_error("logits output '{}' has type {}; expected [batch, seq, vocab] or [batch, vocab]",
                        logits.name(), logits.type().to_string());
    }
    sig.logits_per_position = rank == 3;
    if (logits.type().dim(-1).is_static()) sig.vocab_size = logits.type().dim(-1).value();
  }
  return sig;
}

// ---- StatefulSession ----------------------------------------------------------------------------

// One sequence: its persistent allocation ("arena": two state sets and the logits) and the input/output
// vectors reused between runs, so a steady step loop allocates nothing.
struct StatefulSession::Sequence {
  std::shared_ptr<void> arena;
  std::vector<Tensor> current;  // the state after the tokens fed so far (bound as inputs)
  std::vector<Tensor> next;     // where the next run writes the new state (bound as outputs)
  Tensor logits;                // f32[vocab] after the last token
  bool has_logits = false;
  int64_t token_count = 0;
  std::vector<int32_t> history;  // graphs without state only
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;
  Tensor step_tokens;  // [1, 1], reused by step()
  Tensor position;     // i64 [] or [1]: the position input, when the graph has one
};

StatefulSession::StatefulSession(const Session& session, std::unique_ptr<Session> derived,
                                 StateSignature signature, const StatefulOptions& options)
    : derived_(std::move(derived)),
      session_(derived_ ? derived_.get() : &session),
      signature_(std::move(signature)),
      options_(options) {}

namespace {

// The step graph of a session's graph (passes/derive_decode.h), as a session with the same options.
Result<std::unique_ptr<Session>> derive_step_session(const Session& session) {
  std::unique_ptr<Graph> graph = session.graph().clone();
  SEQRUN_TRY(passes::run_passes(*graph, {"derive-decode"}).status());
  std::map<std::string, std::string> metadata = session.metadata();
  metadata["seqrun.derived"] = "derive-decode";
  ModelOptions model_options;
  model_options.passes = std::vector<std::string>{};  // the source graph's pipeline already ran
  SEQRUN_ASSIGN(std::shared_ptr<const Model> model,
                Model::from_graph(std::move(graph), model_options, std::move(metadata)));
  return Session::from_model(std::move(model), session.options());
}

}  // namespace

StatefulSession::~StatefulSession() = default;

Result<std::unique_ptr<StatefulSession>> StatefulSession::create(const Session& session,
                                                                 const StatefulOptions& options) {
  if (options.max_context < 0)
    return make_error("max_context {} is negative (0 = no bound)", options.max_context);
  if (options.prefill_chunk < 0) {
    return make_error("prefill_chunk {} is negative (0 = the whole prompt at once)", options.prefill_chunk);
  }
  if (options.kv_block <= 0) return make_error("kv_block {} must be positive", options.kv_block);
  Result<StateSignature> sig = find_state_signature(session.graph(), session.metadata());
  if (!sig) return sig.status().with_context("graph '" + session.graph().name() + "'");
  std::unique_ptr<Session> derived;
  std::string note;
  if (!sig->stateful() && options.derive_decode) {
    Result<std::unique_ptr<Session>> step = derive_step_session(session);
    Result<StateSignature> step_sig = step ? find_state_signature((*step)->graph(), (*step)->metadata())
                                           : Result<StateSignature>(step.status());
    if (step_sig && step_sig->stateful()) {
      derived = std::move(step).value();
      sig = std::move(step_sig);
      spdlog::debug("graph '{}': decoding with its derived step graph ({} state tensors)",
                    session.graph().name(), sig->states.size());
    } else {
      note = step_sig ? std::string("the derived graph carries no state") : step_sig.status().message();
      spdlog::warn("graph '{}' has no step graph ({}); every decode step reruns the whole history",
                   session.graph().name(), note);
    }
  }
  std::unique_ptr<StatefulSession> stateful(
      new StatefulSession(session, std::move(derived), std::move(sig).value(), options));
  stateful->derive_note_ = std::move(note);
  return stateful;
}

int StatefulSession::add_sequence() {
  auto seq = std::make_unique<Sequence>();
  // Layout: current set, next set, logits; every tensor 64-byte aligned.
  std::vector<size_t> offsets;
  size_t bytes = 0;
  for (int set = 0; set < 2; ++set) {
    for (const StateSlot& s : signature_.states) {
      offsets.push_back(bytes);
      bytes = align_up(bytes + static_cast<size_t>(num_elements(s.shape)) * dtype_size(s.dtype));
    }
  }
  const size_t logits_offset = bytes;
  if (signature_.vocab_size > 0) bytes += static_cast<size_t>(signature_.vocab_size) * sizeof(float);
  bytes = align_up(std::max<size_t>(bytes, 1));
  void* base = std::aligned_alloc(kStateAlignment, bytes);
  if (base == nullptr) std::abort();  // out of memory, like operator new
  std::memset(base, 0, bytes);
  seq->arena = std::shared_ptr<void>(base, std::free);
  auto* bytes_base = static_cast<uint8_t*>(base);
  const size_t n = signature_.states.size();
  for (size_t i = 0; i < 2 * n; ++i) {
    const StateSlot& s = signature_.states[i % n];
    // A growing state starts with capacity 0 (ensure_capacity allocates it) and is one buffer, updated in
    // place: current and next are the same tensor.
    Tensor t = s.grow_axis >= 0 ? (i < n ? Tensor::zeros(s.dtype, s.shape) : seq->current[i % n])
                                : Tensor::view(s.dtype, s.shape, bytes_base + offsets[i], seq->arena);
    (i < n ? seq->current : seq->next).push_back(t);
  }
  if (signature_.position_input >= 0) {
    seq->position =
        signature_.position_scalar ? Tensor::zeros(DType::i64, {}) : Tensor::zeros(DType::i64, {1});
  }
  if (signature_.vocab_size > 0) {
    seq->logits = Tensor::view(DType::f32, {signature_.vocab_size}, bytes_base + logits_offset, seq->arena);
  }
  seq->step_tokens = Tensor::zeros(signature_.token_dtype, {1, 1});
  const int id = next_id_++;
  sequences_.emplace(id, std::move(seq));
  return id;
}

Status StatefulSession::remove_sequence(int seq_id) {
  SEQRUN_TRY(find(seq_id).status());
  sequences_.erase(seq_id);
  return Status::ok();
}

std::vector<int> StatefulSession::sequence_ids() const {
  std::vector<int> ids;
  for (const auto& [id, seq] : sequences_) ids.push_back(id);
  return ids;
}

Result<StatefulSession::Sequence*> StatefulSession::find(int seq_id) const {
  auto it = sequences_.find(seq_id);
  if (it == sequences_.end()) {
    std::string ids;
    for (const auto& [id, seq] : sequences_) ids += (ids.empty() ? "" : ", ") + std::to_string(id);
    return make_error("sequence {} does not exist (the sequences: {})", seq_id, ids.empty() ? "none" : ids);
  }
  return it->second.get();
}

Status StatefulSession::reset(int seq_id) {
  SEQRUN_ASSIGN(Sequence * seq, find(seq_id));
  for (Tensor& t : seq->current) std::memset(t.raw(), 0, t.nbytes());
  seq->token_count = 0;
  seq->history.clear();
  seq->has_logits = false;
  return Status::ok();
}

Status StatefulSession::check_tokens(int seq_id, const std::vector<int32_t>& tokens) const {
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || (signature_.vocab_size > 0 && tokens[i] >= signature_.vocab_size)) {
      return make_error("sequence {}: token #{} (id {}) is outside the vocabulary [0, {})", seq_id, i,
                        tokens[i], signature_.vocab_size > 0 ? std::to_string(signature_.vocab_size) : "?");
    }
  }
  return Status::ok();
}

Result<Tensor> StatefulSession::prefill(int seq_id, const std::vector<int32_t>& tokens) {
  SEQRUN_ASSIGN(Sequence * seq, find(seq_id));
  if (tokens.empty()) return make_error("sequence {}: prefill needs at least one token", seq_id);
  SEQRUN_TRY(check_tokens(seq_id, tokens));
  const int64_t context = seq->token_count + static_cast<int64_t>(tokens.size());
  if (options_.max_context > 0 && context > options_.max_context) {
    return make_error("sequence {}: context of {} tokens exceeds --max-context {}", seq_id, context,
                      options_.max_context);
  }
  if (!signature_.stateful()) {
    const size_t old_size = seq->history.size();
    seq->history.insert(seq->history.end(), tokens.begin(), tokens.end());
    Status st = run_chunk(seq_id, *seq, nullptr, static_cast<int64_t>(tokens.size()));
    if (!st) {
      seq->history.resize(old_size);
      return st;
    }
    return seq->logits;
  }
  const int64_t total = static_cast<int64_t>(tokens.size());
  ensure_capacity(*seq, context + 1);  // room for the next step too: it will not regrow the cache at once
  const int64_t chunk = options_.prefill_chunk > 0 ? options_.prefill_chunk : total;
  for (int64_t start = 0; start < total; start += chunk) {
    SEQRUN_TRY(run_chunk(seq_id, *seq, tokens.data() + start, std::min(chunk, total - start)));
  }
  return seq->logits;
}

Result<Tensor> StatefulSession::step(int seq_id, int32_t token) {
  SEQRUN_ASSIGN(Sequence * seq, find(seq_id));
  if (!signature_.stateful()) return prefill(seq_id, {token});
  SEQRUN_TRY(check_tokens(seq_id, {token}));
  if (options_.max_context > 0 && seq->token_count + 1 > options_.max_context) {
    return make_error("sequence {}: context of {} tokens exceeds --max-context {}", seq_id,
                      seq->token_count + 1, options_.max_context);
  }
  ensure_capacity(*seq, seq->token_count + 1);
  SEQRUN_TRY(run_chunk(seq_id, *seq, &token, 1));
  return seq->logits;
}

Status StatefulSession::prepare(int64_t prompt_tokens) {
  if (!signature_.stateful() || prompt_tokens <= 0) return Status::ok();  // stateless: every length differs
  const int64_t chunk =
      options_.prefill_chunk > 0 ? std::min(options_.prefill_chunk, prompt_tokens) : prompt_tokens;
  std::vector<int64_t> lengths = {chunk, 1};
  if (prompt_tokens % chunk != 0) lengths.push_back(prompt_tokens % chunk);
  std::vector<InputSpec> specs(session_->graph().inputs().size());
  const int64_t capacity = capacity_for(prompt_tokens + 1, 0);  // what a fresh sequence's prefill allocates
  for (const StateSlot& slot : signature_.states) {
    specs[slot.input_index] = InputSpec{slot.dtype, slot.shape};
    if (slot.grow_axis >= 0) specs[slot.input_index].shape[slot.grow_axis] = capacity;
  }
  if (signature_.position_input >= 0) {
    specs[signature_.position_input] = InputSpec{DType::i64, signature_.position_scalar ? Shape{} : Shape{1}};
  }
  for (int64_t length : lengths) {
    specs[signature_.token_input] = InputSpec{signature_.token_dtype, {1, length}};
    SEQRUN_TRY(session_->plan_for(specs).status());
  }
  return Status::ok();
}

Status StatefulSession::run_chunk(int seq_id, Sequence& seq, const int32_t* tokens, int64_t count) {
  const StateSignature& sig = signature_;
  // Stateless graphs rerun the whole history (already extended by the caller).
  const int32_t* ids = sig.stateful() ? tokens : seq.history.data();
  const int64_t length = sig.stateful() ? count : static_cast<int64_t>(seq.history.size());
  Tensor token_tensor = length == 1 ? seq.step_tokens : Tensor::empty(sig.token_dtype, {1, length});
  for (int64_t t = 0; t < length; ++t) {
    if (sig.token_dtype == DType::i64) {
      token_tensor.data<int64_t>()[t] = ids[t];
    } else {
      token_tensor.data<int32_t>()[t] = ids[t];
    }
  }
  seq.inputs.resize(session_->graph().inputs().size());
  seq.outputs.resize(session_->graph().outputs().size());
  seq.inputs[sig.token_input] = token_tensor;
  if (sig.position_input >= 0) {
    seq.position.data<int64_t>()[0] = seq.token_count;
    seq.inputs[sig.position_input] = seq.position;
  }
  for (size_t i = 0; i < sig.states.size(); ++i) {
    seq.inputs[sig.states[i].input_index] = seq.current[i];
    seq.outputs[sig.states[i].output_index] = seq.next[i];
  }
  Status st = session_->run_into(seq.inputs, seq.outputs);
  if (!st) return st.with_context(fmt::format("sequence {}", seq_id));

  // New state: written in place by the planned executor; otherwise copied into the next set.
  for (size_t i = 0; i < sig.states.size(); ++i) {
    const StateSlot& slot = sig.states[i];
    const Tensor& out = seq.outputs[slot.output_index];
    if (out.raw() == seq.next[i].raw()) continue;
    if (out.dtype() != slot.dtype || out.shape() != seq.next[i].shape()) {
      return make_error("sequence {}: state output '{}' is {}{}, expected {}{}", seq_id, slot.output_name,
                        dtype_name(out.dtype()), shape_to_string(out.shape()), dtype_name(slot.dtype),
                        shape_to_string(seq.next[i].shape()));
    }
    std::memcpy(seq.next[i].raw(), out.raw(), out.nbytes());
    ++copied_state_outputs_;
  }

  // The logits of the last position.
  const Tensor& logits = seq.outputs[sig.logits_output];
  const Shape& shape = logits.shape();
  // Per-position logits cover every token, or only the last one (a derived step graph computes just that).
  const bool shape_ok = sig.logits_per_position
                            ? (shape.size() == 3 && shape[0] == 1 && (shape[1] == length || shape[1] == 1))
                            : (shape.size() == 2 && shape[0] == 1);
  if (!shape_ok || !is_float(logits.dtype()) || shape.back() <= 0) {
    return make_error("sequence {}: logits output '{}' is {}{} for {} tokens; expected [1, {}{}vocab]",
                      seq_id, sig.logits_output_name, dtype_name(logits.dtype()), shape_to_string(shape),
                      length, sig.logits_per_position ? std::to_string(length) : "",
                      sig.logits_per_position ? ", " : "");
  }
  const int64_t vocab = shape.back();
  if (!seq.logits.defined() || seq.logits.numel() != vocab) seq.logits = Tensor::empty(DType::f32, {vocab});
  const int64_t last = (sig.logits_per_position ? shape[1] - 1 : 0) * vocab;
  float* dst = seq.logits.data<float>();
  if (logits.dtype() == DType::f32) {
    std::memcpy(dst, logits.data<float>() + last, static_cast<size_t>(vocab) * sizeof(float));
  } else {
    for (int64_t v = 0; v < vocab; ++v) dst[v] = static_cast<float>(logits.get_f64(last + v));
  }
  seq.has_logits = true;
  std::swap(seq.current, seq.next);
  seq.token_count += count;
  return Status::ok();
}

int64_t StatefulSession::capacity_for(int64_t tokens, int64_t current) const {
  const int64_t block = options_.kv_block;
  int64_t want = std::max(tokens, current + current / 2);
  want = (want + block - 1) / block * block;
  if (options_.max_context > 0) want = std::min(want, std::max(tokens, options_.max_context));
  return want;
}

void StatefulSession::ensure_capacity(Sequence& seq, int64_t tokens) const {
  for (size_t i = 0; i < signature_.states.size(); ++i) {
    const int axis = signature_.states[i].grow_axis;
    if (axis < 0) continue;
    const Tensor old = seq.current[i];
    const int64_t capacity = old.shape()[axis];
    if (tokens <= capacity) continue;
    Shape shape = old.shape();
    shape[axis] = capacity_for(tokens, capacity);
    Tensor grown = Tensor::zeros(old.dtype(), shape);
    // Rows [0, capacity) of every outer index move to the same rows of the bigger buffer.
    int64_t outer = 1, inner = static_cast<int64_t>(dtype_size(old.dtype()));
    for (int d = 0; d < axis; ++d) outer *= shape[d];
    for (size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
    const auto* src = static_cast<const uint8_t*>(old.raw());
    auto* dst = static_cast<uint8_t*>(grown.raw());
    for (int64_t o = 0; o < outer && capacity > 0; ++o) {
      std::memcpy(dst + o * shape[axis] * inner, src + o * capacity * inner,
                  static_cast<size_t>(capacity * inner));
    }
    seq.current[i] = seq.next[i] = grown;
  }
}

Result<Tensor> StatefulSession::last_logits(int seq_id) const {
  SEQRUN_ASSIGN(Sequence * seq, find(seq_id));
  return seq->has_logits ? seq->logits : Tensor();
}

Result<int64_t> StatefulSession::token_count(int seq_id) const {
  SEQRUN_ASSIGN(Sequence * seq, find(seq_id));
  return seq->token_count;
}

Result<std::vector<Tensor>> StatefulSession::states(int seq_id) const {
  SEQRUN_ASSIGN(Sequence * seq, find(seq_id));
  return seq->current;
}

Result<SequenceState> StatefulSession::snapshot(int seq_id) const {
  SEQRUN_ASSIGN(Sequence * seq, find(seq_id));
  SequenceState state;
  for (const Tensor& t : seq->current) state.states.push_back(t.clone());
  state.token_count = seq->token_count;
  state.history = seq->history;
  if (seq->has_logits) state.logits = seq->logits.clone();
  return state;
}

Status StatefulSession::restore(int seq_id, const SequenceState& state) {
  SEQRUN_ASSIGN(Sequence * seq, find(seq_id));
  const std::vector<StateSlot>& slots = signature_.states;
  if (state.states.size() != slots.size()) {
    return make_error("sequence {}: restore: the snapshot holds {} state tensors, the graph has {}", seq_id,
                      state.states.size(), slots.size());
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    const Tensor& t = state.states[i];
    Shape want = slots[i].shape;
    if (slots[i].grow_axis >= 0 && t.rank() == static_cast<int>(want.size())) {
      want[slots[i].grow_axis] = t.shape()[slots[i].grow_axis];  // any capacity that holds the tokens
      if (want[slots[i].grow_axis] < state.token_count) want[slots[i].grow_axis] = state.token_count;
    }
    if (t.dtype() != slots[i].dtype || t.shape() != want) {
      return make_error("sequence {}: restore: state '{}' is {}{}, expected {}{}", seq_id,
                        slots[i].input_name, dtype_name(t.dtype()), shape_to_string(t.shape()),
                        dtype_name(slots[i].dtype), shape_to_string(slots[i].shape));
    }
  }
  if (state.token_count < 0 ||
      (!signature_.stateful() && static_cast<int64_t>(state.history.size()) != state.token_count)) {
    return make_error("sequence {}: restore: token count {} does not match the snapshot's {} history tokens",
                      seq_id, state.token_count, state.history.size());
  }
  if (options_.max_context > 0 && state.token_count > options_.max_context) {
    return make_error("sequence {}: context of {} tokens exceeds --max-context {}", seq_id, state.token_count,
                      options_.max_context);
  }
  const bool has_logits = state.logits.defined();
  if (has_logits && (state.logits.dtype() != DType::f32 || state.logits.rank() != 1 ||
                     (signature_.vocab_size > 0 && state.logits.numel() != signature_.vocab_size))) {
    return make_error("sequence {}: restore: logits are {}{}, expected f32[{}]", seq_id,
                      dtype_name(state.logits.dtype()), shape_to_string(state.logits.shape()),
                      signature_.vocab_size > 0 ? std::to_string(signature_.vocab_size) : "vocab");
  }
  SEQRUN_TRY(check_tokens(seq_id, state.history));
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].grow_axis >= 0) {
      seq->current[i] = seq->next[i] = state.states[i].clone();
      continue;
    }
    std::memcpy(seq->current[i].raw(), state.states[i].raw(), state.states[i].nbytes());
  }
  seq->token_count = state.token_count;
  seq->history = state.history;
  seq->has_logits = has_logits;
  if (has_logits) {
    if (!seq->logits.defined() || seq->logits.numel() != state.logits.numel()) {
      seq->logits = Tensor::empty(DType::f32, state.logits.shape());
    }
    std::memcpy(seq->logits.raw(), state.logits.raw(), state.logits.nbytes());
  }
  return Status::ok();
}

}  // namespace seqrun::runtime
