// seqrun-bench-decode: decode speed of one language model in seqrun against context length, through the
// public decoding API (runtime::StatefulSession): per context, per-token step latency and tokens/s; then the
// speed of prefilling a prompt. Usage and what is timed: tools/bench/decode/README.md and --help.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "runtime/npy.h"
#include "runtime/session.h"
#include "runtime/state.h"
#include "tools/bench/bench_util.h"

using namespace seqrun;
using namespace seqrun::bench;

namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

struct Args {
  std::string model;
  std::string contexts = "1024,4096,16384";
  int steps = 32;
  int repeat = 5;
  int warmup_steps = 4;
  int64_t prefill_tokens = 512;
  int prefill_repeat = 5;
  int64_t prefill_chunk = 512;
  int64_t max_context = 0;
  int64_t kv_block = 0;  // 0 = StatefulOptions' default
  bool no_derive_decode = false;
  int64_t vocab = 0;
  int threads = 2;
  int opt_level = 1;
  uint64_t seed = 0;
  bool json = false;
  std::string dump_dir;
};

// One context's step timings: the per-token latency of each repetition of `steps` steps.
struct ContextResult {
  int64_t context_tokens = 0;
  double context_prefill_ms = 0;     // building the context (one prefill, chunked), timed once
  std::vector<double> ms_per_token;  // one entry per repetition
  bool restored_each_repetition = false;
  bool last_logits_finite = true;
  // For --dump: the context, the last repetition's step tokens and the logits after its last step.
  std::vector<int32_t> context_ids;
  std::vector<int32_t> step_ids;
  Tensor last_logits;
};

struct PrefillResult {
  int64_t prompt_tokens = 0;
  std::vector<double> times_ms;
  std::vector<int32_t> prompt_ids;  // for --dump, with the logits after the last timed prefill
  Tensor last_logits;
};

int report_error(const std::string& message, int code = kExitError) {
  std::fprintf(stderr, "seqrun-bench-decode: error: %s\n", message.c_str());
  return code;
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

// "1024,4096" -> {1024, 4096}; every entry a positive integer.
Result<std::vector<int64_t>> parse_contexts(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || value < 1) {
      return make_error("--contexts '{}': '{}' is not a positive token count", text, item);
    }
    out.push_back(value);
  }
  if (out.empty()) return make_error("--contexts '{}': give at least one context length", text);
  return out;
}

std::vector<int32_t> random_tokens(std::mt19937_64& rng, int64_t count, int64_t vocab) {
  std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> tokens(static_cast<size_t>(count));
  for (int32_t& t : tokens) t = pick(rng);
  return tokens;
}

bool all_finite(const Tensor& logits) {
  if (!logits.defined()) return false;
  const float* p = logits.data<float>();
  for (int64_t i = 0; i < logits.numel(); ++i) {
    if (!std::isfinite(p[i])) return false;
  }
  return true;
}

// Prefills `context_tokens` random tokens into a fresh sequence, then times `repeat` repetitions of `steps`
// single-token steps. When the sequence can be snapshotted, every repetition (and the warmup) starts from the
// state right after the prefill, so all repetitions measure the same context range; otherwise they follow
// one another and the context grows by `steps` each time.
Result<ContextResult> bench_context(runtime::StatefulSession& decoder, const Args& args,
                                    int64_t context_tokens, int64_t vocab, std::mt19937_64& rng) {
  ContextResult r;
  r.context_tokens = context_tokens;
  SEQRUN_TRY(decoder.prepare(context_tokens));
  const int seq = decoder.add_sequence();
  const std::vector<int32_t> context = random_tokens(rng, context_tokens, vocab);
  auto start = std::chrono::steady_clock::now();
  SEQRUN_TRY(decoder.prefill(seq, context).status());
  r.context_prefill_ms = ms_since(start);

  Result<runtime::SequenceState> snapshot = decoder.snapshot(seq);
  r.restored_each_repetition = snapshot.is_ok();
  const std::vector<int32_t> step_tokens = random_tokens(rng, std::max(args.steps, args.warmup_steps), vocab);
  for (int i = 0; i < args.warmup_steps; ++i) SEQRUN_TRY(decoder.step(seq, step_tokens[i]).status());
  for (int rep = 0; rep < args.repeat; ++rep) {
    if (r.restored_each_repetition) SEQRUN_TRY(decoder.restore(seq, snapshot.value()));
    start = std::chrono::steady_clock::now();
    for (int i = 0; i < args.steps; ++i) SEQRUN_TRY(decoder.step(seq, step_tokens[i]).status());
    r.ms_per_token.push_back(ms_since(start) / args.steps);
  }
  SEQRUN_ASSIGN(Tensor logits, decoder.last_logits(seq));
  r.last_logits_finite = all_finite(logits);
  r.last_logits = logits.clone();
  r.context_ids = context;
  r.step_ids.assign(step_tokens.begin(), step_tokens.begin() + args.steps);
  SEQRUN_TRY(decoder.remove_sequence(seq));
  return r;
}

// Times prefilling a `prompt_tokens`-token prompt into an empty sequence: one warmup, then `repeat` runs
// (the sequence reset before each, untimed).
Result<PrefillResult> bench_prefill(runtime::StatefulSession& decoder, const Args& args, int64_t vocab,
                                    std::mt19937_64& rng) {
  PrefillResult r;
  r.prompt_tokens = args.prefill_tokens;
  SEQRUN_TRY(decoder.prepare(args.prefill_tokens));
  const int seq = decoder.add_sequence();
  const std::vector<int32_t> prompt = random_tokens(rng, args.prefill_tokens, vocab);
  SEQRUN_TRY(decoder.prefill(seq, prompt).status());
  for (int rep = 0; rep < args.prefill_repeat; ++rep) {
    SEQRUN_TRY(decoder.reset(seq));
    const auto start = std::chrono::steady_clock::now();
    SEQRUN_TRY(decoder.prefill(seq, prompt).status());
    r.times_ms.push_back(ms_since(start));
  }
  SEQRUN_ASSIGN(Tensor logits, decoder.last_logits(seq));
  r.last_logits = logits.clone();
  r.prompt_ids = prompt;
  SEQRUN_TRY(decoder.remove_sequence(seq));
  return r;
}

Status write_ids(const std::string& path, const std::vector<int32_t>& ids) {
  std::vector<int64_t> wide(ids.begin(), ids.end());
  return runtime::write_npy(path, Tensor::from_vector<int64_t>({static_cast<int64_t>(wide.size())}, wide));
}

// --dump DIR: the tokens and final logits of the first context's last repetition (decode_context_ids.npy,
// decode_step_ids.npy, decode_logits.npy) and of the timed prefill (prefill_ids.npy, prefill_logits.npy), so
// that another implementation (run_torch_decode.py --verify) can check the logits the timed runs produced.
Status write_dump(const std::string& dir, const ContextResult& first, const PrefillResult* prefill) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error("--dump {}: cannot create the folder: {}", dir, ec.message());
  if (first.restored_each_repetition) {
    SEQRUN_TRY(write_ids(dir + "/decode_context_ids.npy", first.context_ids));
    SEQRUN_TRY(write_ids(dir + "/decode_step_ids.npy", first.step_ids));
    SEQRUN_TRY(runtime::write_npy(dir + "/decode_logits.npy", first.last_logits));
  }
  if (prefill != nullptr) {
    SEQRUN_TRY(write_ids(dir + "/prefill_ids.npy", prefill->prompt_ids));
    SEQRUN_TRY(runtime::write_npy(dir + "/prefill_logits.npy", prefill->last_logits));
  }
  return Status::ok();
}

// What carries the state between steps, for the report.
struct StateDescription {
  bool derived = false;     // a step graph derived by StatefulSession (derive-decode), not the model's own
  int growing_tensors = 0;  // KV caches (grow along one axis with the context)
  int64_t growing_bytes_per_token = 0;
  int64_t fixed_bytes = 0;  // fixed-size state (SSM, convolution windows, linear attention)
};

StateDescription describe_state(const runtime::StatefulSession& decoder, const runtime::Session& loaded) {
  StateDescription d;
  d.derived = &decoder.session() != &loaded;
  for (const runtime::StateSlot& slot : decoder.signature().states) {
    int64_t elements = 1;
    for (size_t axis = 0; axis < slot.shape.size(); ++axis) {
      if (static_cast<int>(axis) != slot.grow_axis) elements *= slot.shape[axis];
    }
    const int64_t bytes = elements * static_cast<int64_t>(dtype_size(slot.dtype));
    if (slot.grow_axis >= 0) {
      ++d.growing_tensors;
      d.growing_bytes_per_token += bytes;
    } else {
      d.fixed_bytes += bytes;
    }
  }
  return d;
}

void print_text(const Args& args, const runtime::StatefulSession& decoder, const StateDescription& state,
                int64_t vocab, const std::vector<ContextResult>& contexts, const PrefillResult* prefill) {
  const runtime::StateSignature& sig = decoder.signature();
  std::printf("model: %s (graph '%s'), vocab %lld\n", args.model.c_str(),
              decoder.session().graph().name().c_str(), static_cast<long long>(vocab));
  if (sig.stateful()) {
    std::printf(
        "stateful: yes (%s; %zu state tensors: %d KV caches of %.1f KiB per token, %.2f MiB of "
        "fixed-size state per sequence)\n",
        state.derived ? "step graph derived by derive-decode" : "the model's own state", sig.states.size(),
        state.growing_tensors, static_cast<double>(state.growing_bytes_per_token) / 1024.0,
        static_cast<double>(state.fixed_bytes) / (1024.0 * 1024.0));
  } else {
    std::printf("stateful: no (every step reruns the whole history%s%s)\n",
                decoder.derive_note().empty() ? "" : ": ", decoder.derive_note().c_str());
  }
  std::printf(
      "settings: %d threads, -O%d, prefill chunk %lld; per context: prefill, %d warmup steps, %d x %d "
      "timed steps\n",
      args.threads, args.opt_level, static_cast<long long>(args.prefill_chunk), args.warmup_steps,
      args.repeat, args.steps);
  std::printf(
      "\n| context | tokens/s | ms/token median | ms/token min | ms/token max | context prefill ms |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|\n");
  for (const ContextResult& c : contexts) {
    const double med = median(c.ms_per_token);
    std::printf("| %lld | %.2f | %.3f | %.3f | %.3f | %.1f |\n", static_cast<long long>(c.context_tokens),
                1000.0 / med, med, *std::min_element(c.ms_per_token.begin(), c.ms_per_token.end()),
                *std::max_element(c.ms_per_token.begin(), c.ms_per_token.end()), c.context_prefill_ms);
  }
  for (const ContextResult& c : contexts) {
    if (!c.restored_each_repetition) {
      std::printf(
          "note: context %lld: the state could not be snapshotted; repetitions ran one after another "
          "(contexts %lld..%lld)\n",
          static_cast<long long>(c.context_tokens), static_cast<long long>(c.context_tokens),
          static_cast<long long>(c.context_tokens + args.warmup_steps +
                                 static_cast<int64_t>(args.repeat) * args.steps));
    }
    if (!c.last_logits_finite) {
      std::printf("warning: context %lld: the last step's logits are not all finite\n",
                  static_cast<long long>(c.context_tokens));
    }
  }
  if (prefill != nullptr) {
    const double med = median(prefill->times_ms);
    std::printf("\nprefill %lld tokens: median %.2f ms (min %.2f, max %.2f over %zu runs) = %.1f tokens/s\n",
                static_cast<long long>(prefill->prompt_tokens), med,
                *std::min_element(prefill->times_ms.begin(), prefill->times_ms.end()),
                *std::max_element(prefill->times_ms.begin(), prefill->times_ms.end()),
                prefill->times_ms.size(), static_cast<double>(prefill->prompt_tokens) / (med / 1000.0));
  }
  std::printf("peak RSS: %.1f MiB\n", peak_rss_mib());
}

void print_json(const Args& args, const runtime::StatefulSession& decoder, const StateDescription& state,
                int64_t vocab, const std::vector<ContextResult>& contexts, const PrefillResult* prefill,
                double load_ms) {
  const runtime::StateSignature& sig = decoder.signature();
  nlohmann::json out;
  out["runtime"] = "seqrun";
  out["model"] = args.model;
  out["graph"] = decoder.session().graph().name();
  out["vocab"] = vocab;
  out["stateful"] = sig.stateful();
  out["state_tensors"] = sig.states.size();
  out["derived_step_graph"] = state.derived;
  out["logits_per_position"] = sig.logits_per_position;  // false: the graph computes the last position's only
  out["derive_note"] = decoder.derive_note();
  out["kv_cache_tensors"] = state.growing_tensors;
  out["kv_cache_bytes_per_token"] = state.growing_bytes_per_token;
  out["fixed_state_bytes"] = state.fixed_bytes;
  out["threads"] = args.threads;
  out["opt_level"] = args.opt_level;
  out["prefill_chunk"] = args.prefill_chunk;
  out["steps"] = args.steps;
  out["repeat"] = args.repeat;
  out["warmup_steps"] = args.warmup_steps;
  out["load_ms"] = load_ms;
  nlohmann::json list = nlohmann::json::array();
  for (const ContextResult& c : contexts) {
    const double med = median(c.ms_per_token);
    list.push_back({{"context", c.context_tokens},
                    {"tokens_per_s", 1000.0 / med},
                    {"ms_per_token_median", med},
                    {"ms_per_token", c.ms_per_token},
                    {"context_prefill_ms", c.context_prefill_ms},
                    {"restored_each_repetition", c.restored_each_repetition},
                    {"last_logits_finite", c.last_logits_finite}});
  }
  out["decode"] = list;
  if (prefill != nullptr) {
    const double med = median(prefill->times_ms);
    out["prefill"] = {{"tokens", prefill->prompt_tokens},
                      {"median_ms", med},
                      {"times_ms", prefill->times_ms},
                      {"tokens_per_s", static_cast<double>(prefill->prompt_tokens) / (med / 1000.0)}};
  } else {
    out["prefill"] = nullptr;
  }
  out["peak_rss_mib"] = peak_rss_mib();
  std::printf("%s\n", out.dump(2).c_str());
}

int run(const Args& args) {
  Result<std::vector<int64_t>> contexts = parse_contexts(args.contexts);
  if (!contexts) return report_error(contexts.status().message(), kExitUsage);

  runtime::SessionOptions session_options;
  session_options.threads = args.threads;
  session_options.opt_level = args.opt_level;
  const auto load_start = std::chrono::steady_clock::now();
  Result<std::unique_ptr<runtime::Session>> session = runtime::Session::load(args.model, session_options);
  if (!session) return report_error(session.status().message());  // the message names the file
  const double load_ms = ms_since(load_start);

  runtime::StatefulOptions options;
  options.max_context = args.max_context;
  options.prefill_chunk = args.prefill_chunk;
  options.derive_decode = !args.no_derive_decode;
  if (args.kv_block > 0) options.kv_block = args.kv_block;
  Result<std::unique_ptr<runtime::StatefulSession>> decoder =
      runtime::StatefulSession::create(*session.value(), options);
  if (!decoder) return report_error(decoder.status().with_context(args.model).message());
  runtime::StatefulSession& dec = *decoder.value();

  int64_t vocab = dec.signature().vocab_size;
  if (args.vocab > 0) {
    if (vocab > 0 && args.vocab > vocab) {
      return report_error(
          fmt::format("--vocab {} exceeds the model's vocabulary of {} tokens", args.vocab, vocab),
          kExitUsage);
    }
    vocab = args.vocab;
  }
  if (vocab <= 0) {
    return report_error(
        fmt::format("{}: the logits output does not say the vocabulary size: give --vocab N", args.model),
        kExitUsage);
  }

  std::mt19937_64 rng(args.seed);
  std::vector<ContextResult> results;
  for (int64_t context_tokens : contexts.value()) {
    Result<ContextResult> r = bench_context(dec, args, context_tokens, vocab, rng);
    if (!r) return report_error(r.status().with_context(fmt::format("context {}", context_tokens)).message());
    results.push_back(std::move(r).value());
  }
  std::unique_ptr<PrefillResult> prefill;
  if (args.prefill_tokens > 0) {
    Result<PrefillResult> r = bench_prefill(dec, args, vocab, rng);
    if (!r) {
      return report_error(
          r.status().with_context(fmt::format("prefill of {} tokens", args.prefill_tokens)).message());
    }
    prefill = std::make_unique<PrefillResult>(std::move(r).value());
  }
  if (!args.dump_dir.empty()) {
    Status st = write_dump(args.dump_dir, results.front(), prefill.get());
    if (!st) return report_error(st.message());
  }
  const StateDescription state = describe_state(dec, *session.value());
  if (args.json) {
    print_json(args, dec, state, vocab, results, prefill.get(), load_ms);
  } else {
    print_text(args, dec, state, vocab, results, prefill.get());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  CLI::App app{
      "seqrun-bench-decode: decode tokens/s and per-token latency against context length, and prompt "
      "prefill tokens/s, of one language model through runtime::StatefulSession"};
  app.add_option("MODEL", args.model, "A .seqrun language model (token ids -> logits)")->required();
  app.add_option("--contexts", args.contexts,
                 "Comma-separated context lengths (tokens prefilled before the steps)")
      ->capture_default_str();
  app.add_option("--steps", args.steps, "Timed single-token steps per repetition")
      ->check(CLI::Range(1, std::numeric_limits<int>::max()))
      ->capture_default_str();
  app.add_option("--repeat", args.repeat, "Repetitions of --steps steps per context (the median is reported)")
      ->check(CLI::Range(1, std::numeric_limits<int>::max()))
      ->capture_default_str();
  app.add_option("--warmup-steps", args.warmup_steps, "Untimed steps per context before the repetitions")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--prefill", args.prefill_tokens, "Prompt tokens of the timed prefill (0 = skip it)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--prefill-repeat", args.prefill_repeat, "Timed prefill runs (after one warmup)")
      ->check(CLI::Range(1, std::numeric_limits<int>::max()))
      ->capture_default_str();
  app.add_option("--prefill-chunk", args.prefill_chunk,
                 "Prompt tokens per graph run when prefilling stateful graphs (0 = all at once)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-context", args.max_context, "StatefulOptions::max_context (0 = no bound)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--kv-block", args.kv_block,
                 "StatefulOptions::kv_block, KV-cache growth step in tokens "
                 "(default: the runtime's)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--no-derive-decode", args.no_derive_decode,
               "Do not derive a step graph (StatefulOptions::derive_decode off): graphs without state then "
               "rerun the whole history every step");
  app.add_option("--vocab", args.vocab, "Draw random token ids below this (default: the model's vocabulary)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--threads", args.threads, "Worker threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("-O,--opt-level", args.opt_level, "Pass pipeline level")
      ->check(CLI::Range(0, 1))
      ->capture_default_str();
  app.add_option("--seed", args.seed, "Seed of the random token ids")->capture_default_str();
  app.add_flag("--json", args.json, "Print one JSON object instead of the table");
  app.add_option(
      "--dump", args.dump_dir,
      "Write the first context's and the prefill's tokens and final logits as .npy files into this "
      "folder (checked by run_torch_decode.py --verify)");
  app.footer(
      "Per context: prefill that many random tokens (untimed for the table; its time is shown), then "
      "--warmup-steps\n"
      "steps and --repeat x --steps timed steps, each repetition restarting from the state right after the "
      "prefill.\n"
      "ms/token = a repetition's time / --steps; tokens/s = 1000 / median ms/token. Then --prefill-repeat "
      "timed\n"
      "prefills of a --prefill-token prompt into an empty sequence.\n"
      "\n"
      "Examples:\n"
      "  seqrun-bench-decode mamba.seqrun --contexts 1024,4096,16384 --steps 32 --threads 2\n"
      "  seqrun-bench-decode llama.seqrun --contexts 2048 --prefill 0 --json\n"
      "  seqrun-bench-decode tiny.seqrun --contexts 8,16 --steps 2 --prefill 8          smoke test");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  return run(args);
}
