// The C API's decoding half (runtime/seqrun.h): decoders over runtime::StatefulSession (prefill, step,
// snapshot, restore), samplers over runtime::Sampler, and text generation with a C callback over
// runtime::generate. Same conventions as c_api.cpp: every pointer checked, status + per-thread message,
// no exception past the boundary.
#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/c_api_internal.h"
#include "runtime/generate.h"
#include "runtime/sampler.h"
#include "runtime/seqrun.h"
#include "runtime/state.h"
#include "runtime/tokenizer.h"

using seqrun::Result;
using seqrun::Status;
using seqrun::Tensor;
using seqrun::c_api::clear_out;
using seqrun::c_api::fail;
using seqrun::c_api::guarded;
using seqrun::runtime::Sampler;
using seqrun::runtime::SequenceState;
using seqrun::runtime::StatefulSession;

// Members in this order so the StatefulSession (which refers to the Session) goes first.
struct seqrun_decoder {
  std::shared_ptr<seqrun::runtime::Session> session;
  std::unique_ptr<StatefulSession> stateful;
  // The model's tokenizer, loaded by the first seqrun_generate (a decoder is used by one thread at a time).
  std::unique_ptr<seqrun::runtime::Tokenizer> tokenizer;
};

struct seqrun_snapshot {
  SequenceState state;
};

struct seqrun_sampler {
  std::optional<Sampler> sampler;
};

namespace {

// Unknown sequence ids are SEQRUN_ERROR_NOT_FOUND, with the decoder's message listing the sequences.
seqrun_status check_sequence(const char* function, const seqrun_decoder_t* decoder, int seq_id) {
  Result<int64_t> count = decoder->stateful->token_count(seq_id);
  if (!count) return fail(SEQRUN_ERROR_NOT_FOUND, function, count.status().message());
  return SEQRUN_OK;
}

// Hands `value` to the caller's slot: a new tensor for a NULL slot, in place when the caller's tensor has the
// same dtype and shape, else the caller's handle gets a copy.
void deliver_tensor(const Tensor& value, seqrun_tensor_t** slot) {
  if (*slot == nullptr) {
    auto handle = std::make_unique<seqrun_tensor>();
    handle->tensor = value.clone();
    *slot = handle.release();
    return;
  }
  Tensor& mine = (*slot)->tensor;
  if (mine.dtype() == value.dtype() && mine.shape() == value.shape() && mine.raw() != nullptr) {
    if (value.nbytes() > 0) std::memmove(mine.raw(), value.raw(), value.nbytes());
    return;
  }
  mine = value.clone();
}

seqrun::runtime::SamplingOptions sampling_options_of(const seqrun_sampling_options& options) {
  seqrun::runtime::SamplingOptions sampling;
  sampling.temperature = options.temperature;
  sampling.top_k = options.top_k;
  sampling.top_p = options.top_p;
  sampling.seed = options.seed;
  return sampling;
}

// Feeds tokens (prefill) and delivers the logits; shared by prefill and step.
seqrun_status feed(const char* function, seqrun_decoder_t* decoder, int seq_id, const int32_t* tokens,
                   size_t count, bool is_step, seqrun_tensor_t** logits) {
  if (decoder == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, function, "decoder is NULL");
  if (!is_step && tokens == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, function, "tokens is NULL");
  if (!is_step && count == 0) {
    return fail(SEQRUN_ERROR_INVALID_ARGUMENT, function, "count is 0 (a prefill needs at least one token)");
  }
  seqrun_status known = check_sequence(function, decoder, seq_id);
  if (known != SEQRUN_OK) return known;
  Result<Tensor> result =
      is_step ? decoder->stateful->step(seq_id, tokens[0])
              : decoder->stateful->prefill(seq_id, std::vector<int32_t>(tokens, tokens + count));
  if (!result) return fail(SEQRUN_ERROR_RUN, function, result.status().message());
  if (logits != nullptr) deliver_tensor(*result, logits);
  return SEQRUN_OK;
}

}  // namespace

extern "C" {

// ---- decoders ---------------------------------------------------------------------------------------

void seqrun_decoder_options_init(seqrun_decoder_options* options) {
  if (options == nullptr) return;
  options->max_context = 0;
  options->prefill_chunk = 0;
}

seqrun_status seqrun_decoder_create(seqrun_session_t* session, const seqrun_decoder_options* options,
                                    seqrun_decoder_t** out) {
  const char* fn = "seqrun_decoder_create";
  clear_out(out);
  return guarded(fn, [&]() -> seqrun_status {
    if (out == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "out is NULL");
    if (session == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "session is NULL");
    seqrun::runtime::StatefulOptions stateful_options;
    if (options != nullptr) {
      stateful_options.max_context = options->max_context;
      stateful_options.prefill_chunk = options->prefill_chunk;
    }
    Result<std::unique_ptr<StatefulSession>> stateful =
        StatefulSession::create(*session->session, stateful_options);
    if (!stateful) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, stateful.status().message());
    auto handle = std::make_unique<seqrun_decoder>();
    handle->session = session->session;
    handle->stateful = std::move(stateful).value();
    *out = handle.release();
    return SEQRUN_OK;
  });
}

void seqrun_decoder_free(seqrun_decoder_t* decoder) {
  delete decoder;
}

int64_t seqrun_decoder_vocab_size(const seqrun_decoder_t* decoder) {
  return decoder != nullptr ? decoder->stateful->signature().vocab_size : -1;
}

int seqrun_decoder_is_stateful(const seqrun_decoder_t* decoder) {
  return decoder != nullptr && decoder->stateful->signature().stateful() ? 1 : 0;
}

seqrun_status seqrun_decoder_add_sequence(seqrun_decoder_t* decoder, int* seq_id) {
  const char* fn = "seqrun_decoder_add_sequence";
  return guarded(fn, [&]() -> seqrun_status {
    if (decoder == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "decoder is NULL");
    if (seq_id == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "seq_id is NULL");
    *seq_id = decoder->stateful->add_sequence();
    return SEQRUN_OK;
  });
}

seqrun_status seqrun_decoder_remove_sequence(seqrun_decoder_t* decoder, int seq_id) {
  const char* fn = "seqrun_decoder_remove_sequence";
  return guarded(fn, [&]() -> seqrun_status {
    if (decoder == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "decoder is NULL");
    Status removed = decoder->stateful->remove_sequence(seq_id);
    if (!removed) return fail(SEQRUN_ERROR_NOT_FOUND, fn, removed.message());
    return SEQRUN_OK;
  });
}

seqrun_status seqrun_decoder_reset(seqrun_decoder_t* decoder, int seq_id) {
  const char* fn = "seqrun_decoder_reset";
  return guarded(fn, [&]() -> seqrun_status {
    if (decoder == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "decoder is NULL");
    seqrun_status known = check_sequence(fn, decoder, seq_id);
    if (known != SEQRUN_OK) return known;
    Status reset = decoder->stateful->reset(seq_id);
    if (!reset) return fail(SEQRUN_ERROR_RUN, fn, reset.message());
    return SEQRUN_OK;
  });
}

seqrun_status seqrun_decoder_token_count(const seqrun_decoder_t* decoder, int seq_id, int64_t* count) {
  const char* fn = "seqrun_decoder_token_count";
  return guarded(fn, [&]() -> seqrun_status {
    if (decoder == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "decoder is NULL");
    if (count == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "count is NULL");
    Result<int64_t> tokens = decoder->stateful->token_count(seq_id);
    if (!tokens) return fail(SEQRUN_ERROR_NOT_FOUND, fn, tokens.status().message());
    *count = *tokens;
    return SEQRUN_OK;
  });
}

seqrun_status seqrun_decoder_prefill(seqrun_decoder_t* decoder, int seq_id, const int32_t* tokens,
                                     size_t count, seqrun_tensor_t** logits) {
  const char* fn = "seqrun_decoder_prefill";
  return guarded(fn, [&] { return feed(fn, decoder, seq_id, tokens, count, false, logits); });
}

seqrun_status seqrun_decoder_step(seqrun_decoder_t* decoder, int seq_id, int32_t token,
                                  seqrun_tensor_t** logits) {
  const char* fn = "seqrun_decoder_step";
  return guarded(fn, [&] { return feed(fn, decoder, seq_id, &token, 1, true, logits); });
}

seqrun_status seqrun_decoder_snapshot(const seqrun_decoder_t* decoder, int seq_id, seqrun_snapshot_t** out) {
  const char* fn = "seqrun_decoder_snapshot";
  clear_out(out);
  return guarded(fn, [&]() -> seqrun_status {
    if (decoder == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "decoder is NULL");
    if (out == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "out is NULL");
    Result<SequenceState> state = decoder->stateful->snapshot(seq_id);
    if (!state) return fail(SEQRUN_ERROR_NOT_FOUND, fn, state.status().message());
    auto handle = std::make_unique<seqrun_snapshot>();
    handle->state = std::move(state).value();
    *out = handle.release();
    return SEQRUN_OK;
  });
}

seqrun_status seqrun_decoder_restore(seqrun_decoder_t* decoder, int seq_id,
                                     const seqrun_snapshot_t* snapshot) {
  const char* fn = "seqrun_decoder_restore";
  return guarded(fn, [&]() -> seqrun_status {
    if (decoder == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "decoder is NULL");
    if (snapshot == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "snapshot is NULL");
    seqrun_status known = check_sequence(fn, decoder, seq_id);
    if (known != SEQRUN_OK) return known;
    Status restored = decoder->stateful->restore(seq_id, snapshot->state);
    if (!restored) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, restored.message());
    return SEQRUN_OK;
  });
}

int64_t seqrun_snapshot_token_count(const seqrun_snapshot_t* snapshot) {
  return snapshot != nullptr ? snapshot->state.token_count : 0;
}

void seqrun_snapshot_free(seqrun_snapshot_t* snapshot) {
  delete snapshot;
}

// ---- sampling ---------------------------------------------------------------------------------------

void seqrun_sampling_options_init(seqrun_sampling_options* options) {
  if (options == nullptr) return;
  const seqrun::runtime::SamplingOptions defaults;
  options->temperature = defaults.temperature;
  options->top_k = defaults.top_k;
  options->top_p = defaults.top_p;
  options->seed = defaults.seed;
}

seqrun_status seqrun_sampler_create(const seqrun_sampling_options* options, seqrun_sampler_t** out) {
  const char* fn = "seqrun_sampler_create";
  clear_out(out);
  return guarded(fn, [&]() -> seqrun_status {
    if (out == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "out is NULL");
    seqrun_sampling_options given;
    seqrun_sampling_options_init(&given);
    if (options != nullptr) given = *options;
    Result<Sampler> sampler = Sampler::create(sampling_options_of(given));
    if (!sampler) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, sampler.status().message());
    auto handle = std::make_unique<seqrun_sampler>();
    handle->sampler.emplace(std::move(sampler).value());
    *out = handle.release();
    return SEQRUN_OK;
  });
}

void seqrun_sampler_free(seqrun_sampler_t* sampler) {
  delete sampler;
}

seqrun_status seqrun_sampler_sample(seqrun_sampler_t* sampler, const seqrun_tensor_t* logits,
                                    int32_t* token) {
  const char* fn = "seqrun_sampler_sample";
  return guarded(fn, [&]() -> seqrun_status {
    if (sampler == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "sampler is NULL");
    if (logits == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "logits is NULL");
    if (token == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "token is NULL");
    if (logits->tensor.dtype() != seqrun::DType::f32) {
      return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn,
                  fmt::format("logits are {}, expected f32", seqrun::dtype_name(logits->tensor.dtype())));
    }
    Result<int32_t> next = sampler->sampler->sample(logits->tensor);
    if (!next) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, next.status().message());
    *token = *next;
    return SEQRUN_OK;
  });
}

// ---- text generation --------------------------------------------------------------------------------

void seqrun_generate_options_init(seqrun_generate_options* options) {
  if (options == nullptr) return;
  const seqrun::runtime::GenerateOptions defaults;
  options->max_tokens = defaults.max_tokens;
  seqrun_sampling_options_init(&options->sampling);
  options->stop = nullptr;
  options->num_stop = 0;
  options->stop_at_eos = defaults.stop_at_eos ? 1 : 0;
}

seqrun_status seqrun_generate(seqrun_decoder_t* decoder, const char* prompt,
                              const seqrun_generate_options* options, seqrun_text_callback callback,
                              void* user_data, seqrun_generate_stats* stats) {
  const char* fn = "seqrun_generate";
  return guarded(fn, [&]() -> seqrun_status {
    if (decoder == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "decoder is NULL");
    if (prompt == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "prompt is NULL");
    seqrun_generate_options given;
    seqrun_generate_options_init(&given);
    if (options != nullptr) given = *options;
    seqrun::runtime::GenerateOptions generate_options;
    generate_options.max_tokens = given.max_tokens;
    generate_options.sampling = sampling_options_of(given.sampling);
    generate_options.stop_at_eos = given.stop_at_eos != 0;
    if (given.num_stop > 0 && given.stop == nullptr) {
      return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn,
                  fmt::format("stop is NULL but num_stop is {}", given.num_stop));
    }
    for (size_t i = 0; i < given.num_stop; ++i) {
      if (given.stop[i] == nullptr)
        return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, fmt::format("stop[{}] is NULL", i));
      generate_options.stop.emplace_back(given.stop[i]);
    }
    if (given.max_tokens < 0) {
      return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn,
                  fmt::format("max_tokens {} must be >= 0", given.max_tokens));
    }
    Status valid = seqrun::runtime::validate_sampling_options(generate_options.sampling);
    if (!valid) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, valid.message());

    if (decoder->tokenizer == nullptr) {
      const std::map<std::string, std::string>& metadata = decoder->session->metadata();
      if (!seqrun::runtime::has_tokenizer(metadata)) {
        return fail(SEQRUN_ERROR_NOT_FOUND, fn,
                    "the model has no tokenizer (export it with seqrun-export ... --tokenizer)");
      }
      Result<std::unique_ptr<seqrun::runtime::Tokenizer>> tokenizer =
          seqrun::runtime::tokenizer_from_metadata(metadata);
      if (!tokenizer) return fail(SEQRUN_ERROR_LOAD, fn, tokenizer.status().message());
      decoder->tokenizer = std::move(tokenizer).value();
    }

    const seqrun::runtime::TextCallback on_text = [&](std::string_view text) {
      return callback == nullptr || callback(text.data(), text.size(), user_data) != 0;
    };
    Result<seqrun::runtime::GenerateStats> result =
        seqrun::runtime::generate(*decoder->stateful, *decoder->tokenizer, prompt, generate_options, on_text);
    if (!result) return fail(SEQRUN_ERROR_RUN, fn, result.status().message());
    if (stats != nullptr) {
      stats->prompt_tokens = result->prompt_tokens;
      stats->generated_tokens = result->generated_tokens;
      stats->setup_seconds = result->setup_seconds;
      stats->prompt_seconds = result->prompt_seconds;
      stats->generation_seconds = result->generation_seconds;
      std::memset(stats->finish_reason, 0, sizeof(stats->finish_reason));
      const size_t n = std::min(result->finish_reason.size(), sizeof(stats->finish_reason) - 1);
      std::memcpy(stats->finish_reason, result->finish_reason.data(), n);
    }
    return SEQRUN_OK;
  });
}

}  // extern "C"
