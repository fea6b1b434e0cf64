// Text generation: encode a prompt with the model's tokenizer, prefill it, then sample and step one token at
// a time, streaming the decoded text to a callback as it is produced.
//
// Streaming: tokens go through a StreamDecoder (runtime/tokenizer.h), so the callback only ever receives
// whole UTF-8 characters; the bytes of an unfinished character are held until it completes (and flushed at
// the end). Stop strings: generation ends at the first occurrence of any of them in the generated text; the
// stop string and anything after it are never passed to the callback. To guarantee that, text that could be
// the start of a stop string is held back until the next tokens decide it.
// The end-of-sequence token (the tokenizer's eos id, when it has one) ends generation and is not printed.
// SentencePiece tokenizers get their bos id prepended to the prompt (Llama-style models expect it).
// Stats: prompt processing (the prefill) and generation (sampling the first token from the prefill's logits
// through the last token) are timed separately, in tokens per second; the execution plans they use are built
// before either clock starts (setup_seconds), since that is a one-time cost per shape.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "ir/status.h"
#include "runtime/sampler.h"
#include "runtime/session.h"
#include "runtime/state.h"
#include "runtime/tokenizer.h"

namespace seqrun::runtime {

struct GenerateOptions {
  int64_t max_tokens = 100;       // most tokens to generate (the eos token counts)
  SamplingOptions sampling;       // temperature, top-k, top-p, seed
  std::vector<std::string> stop;  // stop strings (non-empty)
  bool stop_at_eos = true;        // end at the tokenizer's eos id
  int64_t max_context = 0;        // the StatefulSession's bound (convenience overload only); 0 = none
  int64_t prefill_chunk = 0;      // prompt tokens per run (convenience overload only); 0 = all at once
};

struct GenerateStats {
  double setup_seconds = 0;  // building the execution plans before the timed runs (once per shape)
  int64_t prompt_tokens = 0;
  double prompt_seconds = 0;
  int64_t generated_tokens = 0;  // tokens sampled, including a final eos or the token that completed a stop
  double generation_seconds = 0;
  std::string finish_reason;  // "length" (max_tokens), "stop", "eos", or "callback"
  std::string text;           // everything passed to the callback, concatenated

  double prompt_tokens_per_second() const { return prompt_seconds > 0 ? prompt_tokens / prompt_seconds : 0; }
  double generation_tokens_per_second() const {
    return generation_seconds > 0 ? generated_tokens / generation_seconds : 0;
  }
};

// Receives the generated text piece by piece (whole UTF-8 characters); returning false ends generation.
using TextCallback = std::function<bool(std::string_view text)>;

// Generates on a new sequence of `session` (removed again at the end).
Result<GenerateStats> generate(StatefulSession& session, const Tokenizer& tokenizer,
                               const std::string& prompt, const GenerateOptions& options,
                               const TextCallback& on_text);
// The same with the tokenizer from the model's metadata and a StatefulSession made for this call
// (options.max_context, options.prefill_chunk).
Result<GenerateStats> generate(const Session& session, const std::string& prompt,
                               const GenerateOptions& options, const TextCallback& on_text);

}  // namespace seqrun::runtime
