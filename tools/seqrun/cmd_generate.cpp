// `seqrun generate`: continue a text prompt with a model's own tokenizer, streaming the text to stdout as it
// is produced; --stats prints prompt-processing and generation speed to stderr.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>

#include <fmt/format.h>

#include "runtime/generate.h"
#include "tools/seqrun/cli.h"

namespace seqrun::cli {

CLI::App* add_generate_command(CLI::App& app, GenerateArgs& args, GlobalArgs& global) {
  CLI::App* cmd = app.add_subcommand("generate", "Continue a text prompt with a language model");
  cmd->add_option("MODEL", args.model, "A .seqrun file whose metadata holds a tokenizer")->required();
  cmd->add_option("-p,--prompt", args.prompt, "The text to continue")->required();
  cmd->add_option("-n,--max-tokens", args.max_tokens, "Most tokens to generate")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--temperature", args.temperature,
                  "Sampling temperature; 0 = greedy (always the top token)")
      ->capture_default_str();
  cmd->add_option("--top-k", args.top_k, "Sample among the K most likely tokens only (0 = all)")
      ->capture_default_str();
  cmd->add_option("--top-p", args.top_p,
                  "Sample among the most likely tokens that hold probability P (nucleus; 1 = all)")
      ->capture_default_str();
  args.seed_option = cmd->add_option("--seed", args.seed,
                                     "Random seed: the same seed, model and options give the same text "
                                     "(default: a random seed, shown by --stats)");
  cmd->add_option("--stop", args.stop, "Stop before this text appears (repeat for several; not printed)")
      ->allow_extra_args(false);
  cmd->add_option("--max-context", args.max_context,
                  "Most tokens (prompt + generated) the sequence may hold; 0 = the model's "
                  "max_position_embeddings when its metadata has one, else no bound")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--seq-prefill-chunk", args.prefill_chunk,
                  "Process the prompt in runs of this many tokens (stateful models; 0 = all at once)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("--stats", args.stats,
                "Print prompt-processing and generation tokens/s to stderr at the end");
  cmd->add_flag("--no-echo", args.no_echo, "Print only the generated text, not the prompt before it");
  cmd->add_option("--threads", global.threads, "Worker threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  add_pipeline_options(*cmd, args.pipeline);
  add_dtype_option(*cmd, args.pipeline);
  cmd->footer(
      "Stateful models (RWKV: graphs with state.* inputs) process the prompt once and then one token per "
      "step;\n"
      "models without state (GPT-2, Llama exports) rerun the whole text for every token. The tokenizer is "
      "the\n"
      "one stored in the model by seqrun-export. Text is printed as it is generated, whole UTF-8 characters\n"
      "at a time; generation ends after --max-tokens, at a --stop string, or at the end-of-text token.\n"
      "\n"
      "Examples:\n"
      "  seqrun generate rwkv.seqrun --prompt 'Once upon a time' --max-tokens 100 --seed 1 --stats\n"
      "  seqrun generate rwkv.seqrun -p 'The' --temperature 0                  greedy: always the same text\n"
      "  seqrun generate gpt2.seqrun -p 'Hello' --top-k 40 --top-p 0.9 --stop $'\\n'");
  return cmd;
}

int run_generate(const GenerateArgs& args, const GlobalArgs& global) {
  runtime::GenerateOptions options;
  options.max_tokens = args.max_tokens;
  options.stop = args.stop;
  options.prefill_chunk = args.prefill_chunk;
  options.sampling.temperature = args.temperature;
  options.sampling.top_k = args.top_k;
  options.sampling.top_p = args.top_p;
  const bool seed_given = args.seed_option != nullptr && args.seed_option->count() > 0;
  options.sampling.seed =
      seed_given ? args.seed : (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  // Bad values are command-line errors (exit 2), named by their option.
  if (!(args.temperature >= 0) || !std::isfinite(args.temperature)) {
    return report_error(fmt::format("--temperature {}: must be a number >= 0 (0 = greedy)", args.temperature),
                        kExitUsage);
  }
  if (args.top_k < 0)
    return report_error(fmt::format("--top-k {}: must be >= 0 (0 = all)", args.top_k), kExitUsage);
  if (!(args.top_p > 0 && args.top_p <= 1)) {
    return report_error(fmt::format("--top-p {}: must be in (0, 1] (1 = all)", args.top_p), kExitUsage);
  }
  for (const std::string& stop : args.stop) {
    if (stop.empty()) return report_error("--stop: a stop string may not be empty", kExitUsage);
  }

  Result<OpenedModel> model = open_model(args.model, make_session_options(args.pipeline, global));
  if (!model) return report_error(model.status().message());
  const runtime::Session& session = *model.value().session;
  options.max_context = args.max_context;
  if (options.max_context == 0) {
    auto it = session.metadata().find("max_position_embeddings");
    if (it != session.metadata().end()) options.max_context = std::strtoll(it->second.c_str(), nullptr, 10);
  }

  if (!args.no_echo) {
    std::fwrite(args.prompt.data(), 1, args.prompt.size(), stdout);
    std::fflush(stdout);
  }
  bool ends_with_newline = !args.no_echo && !args.prompt.empty() && args.prompt.back() == '\n';
  auto print = [&](std::string_view text) {
    if (text.empty()) return true;
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    ends_with_newline = text.back() == '\n';
    return true;
  };
  Result<runtime::GenerateStats> stats = runtime::generate(session, args.prompt, options, print);
  if (!ends_with_newline) std::printf("\n");
  std::fflush(stdout);
  if (!stats) return report_error(stats.status().with_context(args.model).message());
  if (args.stats) {
    const runtime::GenerateStats& s = stats.value();
    std::fprintf(stderr, "setup (execution plans): %.2f ms\n", s.setup_seconds * 1e3);
    std::fprintf(stderr, "prompt processing: %lld tokens in %.2f ms, %.1f tokens/s\n",
                 static_cast<long long>(s.prompt_tokens), s.prompt_seconds * 1e3,
                 s.prompt_tokens_per_second());
    std::fprintf(stderr, "generation: %lld tokens in %.2f ms, %.1f tokens/s (finished: %s; seed %llu)\n",
                 static_cast<long long>(s.generated_tokens), s.generation_seconds * 1e3,
                 s.generation_tokens_per_second(), s.finish_reason.c_str(),
                 static_cast<unsigned long long>(options.sampling.seed));
  }
  return 0;
}

}  // namespace seqrun::cli
