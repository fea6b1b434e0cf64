// seqrun: the command-line front end — global options, logging setup and dispatch to the subcommands.
#include <cstdio>
#include <cstdlib>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "backends/registry.h"
#include "tools/seqrun/cli.h"

#ifndef SEQRUN_VERSION
#define SEQRUN_VERSION "unknown"
#endif

namespace {

// Logs go to stderr so that stdout stays the command's result (text, JSON, output summaries).
void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("seqrun");
  logger->set_pattern("seqrun: [%l] %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace

int main(int argc, char** argv) {
  using namespace seqrun::cli;
  CLI::App app("seqrun: inspect and run sequence models (.seqrun files, or .onnx files imported on the fly)",
               "seqrun");
  app.set_version_flag("--version", std::string("seqrun ") + SEQRUN_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand: `seqrun run m.onnx --log-level debug`

  GlobalArgs global;
  app.add_option("--log-level", global.log_level, "Log verbosity (stderr)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->envname("SEQRUN_LOG_LEVEL")
      ->capture_default_str();
  app.add_option("--threads", global.threads, "Worker threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  app.add_option(
         "--backend", global.backend,
         "Where nodes run: cpu, cpu-reference, or cuda (GPU 0; nodes without a CUDA kernel run on the CPU)")
      ->capture_default_str();
  app.footer(
      "Exit codes: 0 ok, 1 the command failed, 2 bad command line.\n"
      "\n"
      "Examples:\n"
      "  seqrun inspect model.onnx                 interface, op counts, weights, IR after passes\n"
      "  seqrun inspect model.seqrun --format json\n"
      "  seqrun run model.onnx --input x=x.npy --output-dir out/\n"
      "  seqrun --log-level debug run model.seqrun -i x=x.npy\n"
      "  seqrun bench model.seqrun -i x=x.npy --warmup 3 --repeat 10\n"
      "  seqrun tokenize gpt2.seqrun --text 'Hello world'   (the tokenizer stored in the model)\n"
      "  seqrun generate rwkv.seqrun --prompt 'Once upon a time' --max-tokens 100 --seed 1 --stats\n"
      "\n"
      "Run 'seqrun <command> --help' for a command's options.");

  InspectArgs inspect_args;
  RunArgs run_args;
  BenchArgs bench_args;
  TokenizeArgs tokenize_args;
  GenerateArgs generate_args;
  CLI::App* inspect = add_inspect_command(app, inspect_args);
  CLI::App* run = add_run_command(app, run_args, global);
  CLI::App* bench = add_bench_command(app, bench_args, global);
  CLI::App* tokenize = add_tokenize_command(app, tokenize_args);
  CLI::App* generate = add_generate_command(app, generate_args, global);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // Point at the help of the subcommand being parsed, when there is one.
    std::string help = "seqrun --help";
    for (const CLI::App* sub : app.get_subcommands()) help = "seqrun " + sub->get_name() + " --help";
    return report_error(std::string(e.what()) + " (see '" + help + "')", kExitUsage);
  }

  setup_logging(global.log_level);
  // An unknown backend, or "cuda" without a usable GPU ("no CUDA device (...)"), fails before any work.
  const auto backend_list = seqrun::backends::backend_list_by_name(global.backend);
  if (!backend_list.is_ok()) return report_error(backend_list.status().message());
  for (const PipelineArgs* pipeline : {&run_args.pipeline, &bench_args.pipeline, &generate_args.pipeline}) {
    const seqrun::Status st = check_dtype_backend(*pipeline, global);
    if (!st.is_ok()) return report_error(st.message(), kExitUsage);
  }
  if (inspect->parsed()) return run_inspect(inspect_args, global);
  if (run->parsed()) return run_run(run_args, global);
  if (bench->parsed()) return run_bench(bench_args, global);
  if (tokenize->parsed()) return run_tokenize(tokenize_args, global);
  if (generate->parsed()) return run_generate(generate_args, global);
  return report_error("no command given (see 'seqrun --help')", kExitUsage);
}
