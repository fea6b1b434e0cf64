// seqrun-gpu-decode-bench: decode speed of one language model on a backend (CUDA by default, optionally with
// --dtype bf16/f16) through the public decoding API, runtime::StatefulSession: a --prompt-token prefill, then
// --steps greedy single-token steps (argmax of the logits, which come back to the host every step), timed
// with a steady clock, the median over --repeat fresh sequences after one warm-up sequence. Graphs without
// state decode with their derived step graph (derive-decode: KV caches through CachedAttention, SSM state),
// or rerun the whole history when none can be derived; the output says which.
//
// One machine-readable line for tools/gpu/check.sh (bench_models.py):
//   RESULT seqrun-decode dtype=bf16 prompt=32 steps=64 prefill_ms=3.2 step_ms=1.9 decode_tok_s=526.3
//   stateful=1
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "backends/registry.h"
#include "passes/convert_dtype.h"
#include "runtime/session.h"
#include "runtime/state.h"

namespace {

using namespace seqrun;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string model;
  std::string backend = "cuda";
  std::string dtype = "f32";
  int64_t prompt = 32;
  int64_t steps = 64;
  int repeat = 3;
  uint64_t seed = 0;
};

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

int32_t argmax(const Tensor& logits) {
  const float* p = logits.data<float>();
  return static_cast<int32_t>(std::max_element(p, p + logits.numel()) - p);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

int fail(const std::string& message) {
  std::fprintf(stderr, "seqrun-gpu-decode-bench: error: %s\n", message.c_str());
  return 1;
}

int run(const Args& args) {
  Result<std::vector<backends::Backend*>> list = backends::backend_list_by_name(args.backend);
  if (!list) return fail(list.status().message());
  Result<DType> dtype = passes::parse_execution_dtype(args.dtype);
  if (!dtype) return fail(dtype.status().message());
  runtime::SessionOptions options;
  options.backends = list.value();
  options.dtype = dtype.value();
  Result<std::unique_ptr<runtime::Session>> session = runtime::Session::load(args.model, options);
  if (!session) return fail(session.status().message());
  runtime::StatefulOptions stateful_options;
  stateful_options.max_context = args.prompt + args.steps + 1;
  Result<std::unique_ptr<runtime::StatefulSession>> decoder =
      runtime::StatefulSession::create(**session, stateful_options);
  if (!decoder) return fail(decoder.status().message());
  runtime::StatefulSession& dec = **decoder;
  const bool stateful = dec.signature().stateful();
  std::printf("%s: %s, %s\n", args.model.c_str(),
              stateful ? "decoding with state" : "no state: every step reruns the history",
              dec.derive_note().empty() ? "(no note)" : dec.derive_note().c_str());
  int64_t vocab = dec.signature().vocab_size;
  if (vocab <= 0) vocab = 256;
  std::mt19937_64 rng(args.seed);
  std::vector<int32_t> prompt(static_cast<size_t>(args.prompt));
  for (int32_t& t : prompt) t = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
  if (Status st = dec.prepare(args.prompt); !st) return fail(st.message());

  std::vector<double> prefill_ms, step_ms;
  for (int r = 0; r <= args.repeat; ++r) {  // r = 0 warms up
    const int seq = dec.add_sequence();
    const Clock::time_point t0 = Clock::now();
    Result<Tensor> logits = dec.prefill(seq, prompt);
    if (!logits) return fail(logits.status().message());
    const double prefill = ms_since(t0);
    int32_t token = argmax(*logits);
    const Clock::time_point t1 = Clock::now();
    for (int64_t s = 0; s < args.steps; ++s) {
      logits = dec.step(seq, token);
      if (!logits) return fail(logits.status().message());
      token = argmax(*logits);
    }
    const double per_step = ms_since(t1) / static_cast<double>(std::max<int64_t>(args.steps, 1));
    if (Status st = dec.remove_sequence(seq); !st) return fail(st.message());
    if (r == 0) continue;
    prefill_ms.push_back(prefill);
    step_ms.push_back(per_step);
  }
  const double step = median(step_ms);
  std::printf(
      "RESULT seqrun-decode dtype=%s prompt=%lld steps=%lld prefill_ms=%.4f step_ms=%.4f decode_tok_s=%.1f "
      "stateful=%d\n",
      args.dtype.c_str(), static_cast<long long>(args.prompt), static_cast<long long>(args.steps),
      median(prefill_ms), step, step > 0 ? 1e3 / step : 0.0, stateful ? 1 : 0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  CLI::App app(
      "seqrun-gpu-decode-bench: decode tokens/s of a language model through StatefulSession on a backend");
  app.add_option("MODEL", args.model, "A .seqrun language model (input_ids -> logits, or a stateful graph)")
      ->required();
  app.add_option("--backend", args.backend, "cuda, cpu or cpu-reference")->capture_default_str();
  app.add_option("--dtype", args.dtype, "f32, or f16/bf16 with --backend cuda")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}))
      ->capture_default_str();
  app.add_option("--prompt", args.prompt, "Prompt tokens prefilled before the steps")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--steps", args.steps, "Timed single-token steps per sequence")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--repeat", args.repeat,
                 "Timed sequences (after one warm-up sequence); medians are reported")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--seed", args.seed, "Seed of the random prompt")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return run(args);
}
