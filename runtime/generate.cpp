// Text generation loop: prefill the prompt, then sample / step / stream-decode until a limit, a stop string
// or the end-of-sequence token (see generate.h).
#include "runtime/generate.h"

#include <chrono>
#include <cstdlib>

namespace seqrun::runtime {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The length of the longest suffix of `text` that is a proper prefix of some stop string: text that the next
// tokens could still turn into a stop string, so it must not be emitted yet.
size_t held_back_length(const std::string& text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const std::string& stop : stops) {
    for (size_t k = std::min(stop.size() - 1, text.size()); k > hold; --k) {
      if (text.compare(text.size() - k, k, stop, 0, k) == 0) {
        hold = k;
        break;
      }
    }
  }
  return hold;
}

// Removes the generation's sequence however the loop ends.
class SequenceGuard {
 public:
  SequenceGuard(StatefulSession& session, int seq_id) : session_(session), seq_id_(seq_id) {}
  ~SequenceGuard() { (void)session_.remove_sequence(seq_id_); }
  SequenceGuard(const SequenceGuard&) = delete;
  SequenceGuard& operator=(const SequenceGuard&) = delete;

 private:
  StatefulSession& session_;
  int seq_id_;
};

}  // namespace

Result<GenerateStats> generate(StatefulSession& session, const Tokenizer& tokenizer,
                               const std::string& prompt, const GenerateOptions& options,
                               const TextCallback& on_text) {
  if (options.max_tokens < 0) return make_error("max_tokens {} must be >= 0", options.max_tokens);
  for (const std::string& stop : options.stop) {
    if (stop.empty()) return make_error("a stop string is empty (every stop string needs at least one byte)");
  }
  SEQRUN_ASSIGN(Sampler sampler, Sampler::create(options.sampling));
  Result<std::vector<int32_t>> encoded = tokenizer.encode(prompt);
  if (!encoded) return encoded.status().with_context("the prompt");
  std::vector<int32_t> ids = std::move(encoded).value();
  if (tokenizer.kind() == "sentencepiece" && tokenizer.bos_id()) ids.insert(ids.begin(), *tokenizer.bos_id());
  if (ids.empty()) return make_error("the prompt is empty: give some text to continue");

  GenerateStats stats;
  const int seq_id = session.add_sequence();
  SequenceGuard guard(session, seq_id);
  const auto setup_start = std::chrono::steady_clock::now();
  SEQRUN_TRY(session.prepare(static_cast<int64_t>(ids.size())));
  stats.setup_seconds = seconds_since(setup_start);
  const auto prompt_start = std::chrono::steady_clock::now();
  SEQRUN_ASSIGN(Tensor logits, session.prefill(seq_id, ids));
  stats.prompt_tokens = static_cast<int64_t>(ids.size());
  stats.prompt_seconds = seconds_since(prompt_start);

  const auto generation_start = std::chrono::steady_clock::now();
  StreamDecoder decoder(tokenizer);
  std::string pending;  // decoded text not yet passed on (a possible start of a stop string)
  auto emit = [&](const std::string& text) {
    if (text.empty()) return true;
    stats.text += text;
    return on_text ? on_text(text) : true;
  };
  const std::optional<int32_t> eos = tokenizer.eos_id();
  int32_t token = 0;
  for (int64_t i = 0; i < options.max_tokens && stats.finish_reason.empty(); ++i) {
    if (i > 0) {
      SEQRUN_ASSIGN(logits, session.step(seq_id, token));
    }
    SEQRUN_ASSIGN(token, sampler.sample(logits));
    ++stats.generated_tokens;
    if (options.stop_at_eos && eos && token == *eos) {
      stats.finish_reason = "eos";
      break;
    }
    SEQRUN_ASSIGN(std::string piece, decoder.push(token));
    pending += piece;
    size_t stop_at = std::string::npos;
    for (const std::string& stop : options.stop) stop_at = std::min(stop_at, pending.find(stop));
    if (stop_at != std::string::npos) {
      emit(pending.substr(0, stop_at));
      pending.clear();
      stats.finish_reason = "stop";
      break;
    }
    const size_t ready = pending.size() - held_back_length(pending, options.stop);
    const bool go_on = emit(pending.substr(0, ready));
    pending.erase(0, ready);
    if (!go_on) stats.finish_reason = "callback";
  }
  if (stats.finish_reason.empty()) stats.finish_reason = "length";
  if (stats.finish_reason == "length" || stats.finish_reason == "eos") emit(pending + decoder.flush());
  stats.generation_seconds = seconds_since(generation_start);
  return stats;
}

Result<GenerateStats> generate(const Session& session, const std::string& prompt,
                               const GenerateOptions& options, const TextCallback& on_text) {
  Result<std::unique_ptr<Tokenizer>> tokenizer = tokenizer_from_metadata(session.metadata());
  if (!tokenizer) return tokenizer.status();
  StatefulOptions stateful;
  stateful.max_context = options.max_context;
  stateful.prefill_chunk = options.prefill_chunk;
  SEQRUN_ASSIGN(std::unique_ptr<StatefulSession> stateful_session,
                StatefulSession::create(session, stateful));
  return generate(*stateful_session, *tokenizer.value(), prompt, options, on_text);
}

}  // namespace seqrun::runtime
