// What the seqrun subcommands share: global and pipeline options, opening a model file of either
// format into a Session, and the one-line error convention.
//
// Exit codes: 0 success, 1 the command failed (bad model, bad input data, failed run), 2 the
// command line itself is wrong (unknown option, malformed --input). Every failure prints exactly
// one line "seqrun: error: ..." to stderr that names the file, input or node at fault.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "ir/status.h"
#include "runtime/session.h"

namespace seqrun::cli {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct GlobalArgs {
  std::string log_level = "warn";
  int threads = 0;              // 0 = all cores
  std::string backend = "cpu";  // --backend: cpu | cpu-reference | cuda (backends/registry.h)
};

// -O0 / -O1 / --passes a,b,c, shared by every command that loads a model.
struct PipelineArgs {
  int opt_level = 1;
  std::vector<std::string> passes;
  CLI::Option* passes_option = nullptr;  // to tell "--passes not given" from "--passes ''"
  std::string dtype = "f32";             // --dtype f32|f16|bf16 (run, bench, generate; needs --backend cuda)
};

void add_pipeline_options(CLI::App& command, PipelineArgs& args);
// --dtype: run the CUDA-placed part of the model in f16/bf16 (SessionOptions::dtype).
void add_dtype_option(CLI::App& command, PipelineArgs& args);
// The one-line error for --dtype f16/bf16 with a backend other than cuda; ok otherwise.
Status check_dtype_backend(const PipelineArgs& pipeline, const GlobalArgs& global);
runtime::SessionOptions make_session_options(const PipelineArgs& pipeline, const GlobalArgs& global);

struct OpenedModel {
  std::unique_ptr<runtime::Session> session;
  std::string format;  // "seqrun" or "onnx"
};

// Opens a .seqrun file (by its magic) or an .onnx file (anything else) and runs the pipeline.
Result<OpenedModel> open_model(const std::string& path, const runtime::SessionOptions& options);

// Prints "seqrun: error: MESSAGE" to stderr and returns `exit_code`.
int report_error(const std::string& message, int exit_code = kExitFailure);

// Subcommands: each registers its options on `app` and returns the subcommand; run_* return the exit code.
struct InspectArgs;
struct RunArgs;
CLI::App* add_inspect_command(CLI::App& app, InspectArgs& args);
int run_inspect(const InspectArgs& args, const GlobalArgs& global);
CLI::App* add_run_command(CLI::App& app, RunArgs& args, GlobalArgs& global);
int run_run(const RunArgs& args, const GlobalArgs& global);
struct BenchArgs;
CLI::App* add_bench_command(CLI::App& app, BenchArgs& args, GlobalArgs& global);
int run_bench(const BenchArgs& args, const GlobalArgs& global);
struct TokenizeArgs;
CLI::App* add_tokenize_command(CLI::App& app, TokenizeArgs& args);
int run_tokenize(const TokenizeArgs& args, const GlobalArgs& global);
struct GenerateArgs;
CLI::App* add_generate_command(CLI::App& app, GenerateArgs& args, GlobalArgs& global);
int run_generate(const GenerateArgs& args, const GlobalArgs& global);

struct InspectArgs {
  std::string model;
  std::string format = "text";
  bool print_weights = false;
  bool memory = false;                    // --memory: the execution plan's memory report
  bool placement = false;                 // --placement: backend and kernel of every node
  std::vector<std::string> input_shapes;  // --input-shape NAME=1x1024 (binds symbolic dims)
  std::string approximate;                // --approximate favor[:M] (tools/seqrun/approximate.h)
  std::vector<std::string> inputs;        // --input NAME=FILE.npy: what --approximate measures on
  PipelineArgs pipeline;
};

struct RunArgs {
  std::string model;
  std::vector<std::string> inputs;  // NAME=FILE.npy
  std::string output_dir;
  bool check_finite = false;
  std::string profile_path;  // --profile trace.json: Chrome/Perfetto trace of the run
  std::string approximate;   // --approximate favor[:M] (tools/seqrun/approximate.h)
  PipelineArgs pipeline;
};

struct BenchArgs {
  std::string model;
  std::vector<std::string> inputs;  // NAME=FILE.npy
  bool random_inputs = false;
  std::vector<std::string> input_shapes;  // NAME=1x1024, for --random-inputs
  uint64_t seed = 0;
  int warmup = 3;
  int repeat = 10;
  bool load_only = false;
  std::string output_dir;
  bool json = false;
  PipelineArgs pipeline;
};

struct TokenizeArgs {
  std::string model;
  std::string text;                    // --text: encode
  std::string ids;                     // --ids 1,2,3: decode
  bool pieces = false;                 // --pieces: one line per token
  CLI::Option* text_option = nullptr;  // to tell "--text ''" from no --text
  CLI::Option* ids_option = nullptr;
};

struct GenerateArgs {
  std::string model;
  std::string prompt;
  int64_t max_tokens = 100;
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  uint64_t seed = 0;
  CLI::Option* seed_option = nullptr;  // no --seed: a random seed
  std::vector<std::string> stop;
  int64_t max_context = 0;    // 0: the model's max_position_embeddings, else no bound
  int64_t prefill_chunk = 0;  // --seq-prefill-chunk
  bool stats = false;
  bool no_echo = false;
  PipelineArgs pipeline;
};

}  // namespace seqrun::cli
