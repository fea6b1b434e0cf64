// seqrun-export: converts ONNX models into .seqrun files and runs ONNX conformance test folders.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "backends/registry.h"
#include "ir/serialize.h"
#include "models/builders.h"
#include "models/rwkv/rwkv_builder.h"
#include "passes/pass.h"
#include "runtime/tokenizer.h"
#include "tools/export/conformance.h"
#include "tools/export/onnx_import.h"

namespace {

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

int report_error(const std::string& message, int code) {
  std::fprintf(stderr, "seqrun-export: error: %s\n", message.c_str());
  return code;
}

// --tokenizer PATH: stores a tokenizer in the model metadata (runtime/tokenizer.h) for `seqrun tokenize`.
void add_tokenizer_option(CLI::App* cmd, std::string& path) {
  cmd->add_option("--tokenizer", path,
                  "Store this tokenizer in the model: 'bytes', a tokenizer.json, a SentencePiece .model, "
                  "encoder.json (+ vocab.bpe beside it), or a folder holding one of them");
}
seqrun::Status store_tokenizer(const std::string& path, seqrun::SaveOptions& save) {
  if (path.empty()) return seqrun::Status::ok();
  return seqrun::runtime::tokenizer_to_metadata_from_path(path, save.metadata).with_context("--tokenizer");
}

struct ConvertArgs {
  std::string input;
  std::string output;
  std::string tokenizer;
  std::string external_data_dir;
};

struct RwkvArgs {
  std::string input;
  std::string output;
  std::string tokenizer;
};

struct CheckArgs {
  std::vector<std::string> dirs;
  int opt_level = 1;
  std::vector<std::string> passes;
  CLI::Option* passes_option = nullptr;
  std::string exclude_file;
  bool skip_unsupported = false;
  std::string backend = "cpu";           // --backend (backends/registry.h)
  std::vector<std::string> require_ops;  // --require-op
  std::vector<std::string> forbid_ops;   // --forbid-op
};

int run_convert(const ConvertArgs& args) {
  seqrun::onnx_import::ImportOptions options;
  options.external_data_dir = args.external_data_dir;
  auto graph = seqrun::onnx_import::import_onnx_file(args.input, options);
  if (!graph) return report_error(graph.status().message(), kExitFailed);
  seqrun::SaveOptions save;
  save.producer = "seqrun-export";
  save.metadata["source_format"] = "onnx";
  save.metadata["source_file"] = std::filesystem::path(args.input).filename().string();
  seqrun::Status tokenizer = store_tokenizer(args.tokenizer, save);
  if (!tokenizer) return report_error(tokenizer.message(), kExitFailed);
  seqrun::Status st = seqrun::save_model(*graph.value(), args.output, save);
  if (!st) return report_error(st.message(), kExitFailed);
  const seqrun::Graph& g = *graph.value();
  std::printf("wrote %s: %d nodes, %zu inputs, %zu outputs, %zu bytes of constants\n", args.output.c_str(),
              g.num_nodes(), g.inputs().size(), g.outputs().size(), g.constant_bytes());
  return 0;
}

int run_rwkv(const RwkvArgs& args) {
  namespace rwkv = seqrun::models::rwkv;
  auto file = rwkv::read_rwkv_file(args.input);
  if (!file) return report_error(file.status().message(), kExitFailed);
  auto built = rwkv::build_rwkv_graph(file.value());
  if (!built) return report_error(built.status().message(), kExitFailed);
  const rwkv::RwkvModelInfo& info = built.value().info;
  seqrun::SaveOptions save;
  save.producer = "seqrun-export";
  save.metadata["source_format"] = "rwkv.cpp";
  save.metadata["source_file"] = std::filesystem::path(args.input).filename().string();
  save.metadata["rwkv_version"] = rwkv::rwkv_arch_name(info.arch);
  save.metadata["rwkv_state"] =
      "inputs after tokens: state.<layer>.{att_shift, wkv, ffn_shift}, zeros to start; "
      "outputs after logits: the new states in the same order";
  // rwkv.cpp's tiny models have a byte-level vocabulary (256 ids = UTF-8 bytes): store it unless told
  // otherwise.
  const std::string tokenizer_path = args.tokenizer.empty() && info.n_vocab == 256 ? "bytes" : args.tokenizer;
  seqrun::Status tokenizer = store_tokenizer(tokenizer_path, save);
  if (!tokenizer) return report_error(tokenizer.message(), kExitFailed);
  const seqrun::Graph& g = *built.value().graph;
  seqrun::Status st = seqrun::save_model(g, args.output, save);
  if (!st) return report_error(st.message(), kExitFailed);
  std::printf(
      "wrote %s: RWKV v%s, %lld layers, n_embed %lld, vocab %lld: %d nodes, %zu inputs, %zu outputs, "
      "%zu bytes of constants\n",
      args.output.c_str(), rwkv::rwkv_arch_name(info.arch), static_cast<long long>(info.n_layer),
      static_cast<long long>(info.n_embed), static_cast<long long>(info.n_vocab), g.num_nodes(),
      g.inputs().size(), g.outputs().size(), g.constant_bytes());
  return 0;
}

struct HfArgs {
  std::string dir;
  std::string output;
  std::string tokenizer;
};

// Builds the graph of a checkpoint folder (models/builders.h) and saves it with the builder's metadata.
int run_hf(const HfArgs& args) {
  auto built = seqrun::models::build_model_from_checkpoint_dir(args.dir);
  if (!built) return report_error(built.status().message(), kExitFailed);
  seqrun::SaveOptions save;
  save.producer = "seqrun-export";
  save.metadata = built.value().metadata;
  save.metadata["source_dir"] = std::filesystem::path(args.dir).lexically_normal().filename().string();
  seqrun::Status tokenizer = store_tokenizer(args.tokenizer, save);
  if (!tokenizer) return report_error(tokenizer.message(), kExitFailed);
  const seqrun::Graph& g = *built.value().graph;
  seqrun::Status st = seqrun::save_model(g, args.output, save);
  if (!st) return report_error(st.message(), kExitFailed);
  std::printf("wrote %s: %s, %d nodes, vocab %s, %zu bytes of constants\n", args.output.c_str(),
              save.metadata["architecture"].c_str(), g.num_nodes(), save.metadata["vocab_size"].c_str(),
              g.constant_bytes());
  return 0;
}

int run_check(const CheckArgs& args) {
  seqrun::conformance::CheckOptions options;
  options.opt_level = args.opt_level;
  if (args.passes_option != nullptr && args.passes_option->count() > 0) {
    std::vector<std::string> names;
    for (const std::string& n : args.passes) {
      if (!n.empty()) names.push_back(n);
    }
    options.passes = names;
  }
  options.skip_unsupported = args.skip_unsupported;
  options.require_ops = args.require_ops;
  options.forbid_ops = args.forbid_ops;
  auto backend_list = seqrun::backends::backend_list_by_name(args.backend);
  if (!backend_list) return report_error(backend_list.status().message(), kExitFailed);
  options.backends = backend_list.value();
  if (!args.exclude_file.empty()) {
    auto excluded = seqrun::conformance::read_exclude_file(args.exclude_file);
    if (!excluded) return report_error(excluded.status().message(), kExitUsage);
    options.excluded = std::move(excluded).value();
  }
  auto summary = seqrun::conformance::run_conformance(args.dirs, options, &std::cout);
  if (!summary) return report_error(summary.status().message(), kExitUsage);
  std::cout << seqrun::conformance::format_summary(summary.value()) << std::endl;
  return summary.value().ok() ? 0 : kExitFailed;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(
      "seqrun-export: convert ONNX models to .seqrun files and check seqrun against ONNX's operator tests",
      "seqrun-export");
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 ok, 1 the conversion failed or a test failed, 2 bad command line.\n"
      "\n"
      "Examples:\n"
      "  seqrun-export onnx model.onnx -o model.seqrun\n"
      "  seqrun-export rwkv tiny-rwkv-5v2-730K-FP32.bin -o rwkv.seqrun\n"
      "  seqrun-export hf path/to/checkpoint -o model.seqrun\n"
      "  seqrun-export check tests/data/onnx-node                      every test folder inside\n"
      "  seqrun-export check -O0 tests/data/onnx-node/test_gelu_tanh_1  one test, no passes\n"
      "  seqrun-export check --passes canonicalize --exclude tests/conformance-exclude.txt DIR\n"
      "  seqrun-export check --skip-unsupported /usr/share/libonnx-testdata/data/node\n"
      "\n"
      "Run 'seqrun-export <command> --help' for a command's options.");

  ConvertArgs convert_args;
  CLI::App* convert = app.add_subcommand("onnx", "Convert an ONNX model into a .seqrun file");
  convert->footer(
      "Imports opsets 1..28 of the default domain (and ai.onnx.preview's FlexAttention); older opset forms\n"
      "are converted to the newest. Initializers become weights (external data is read relative to the\n"
      "model's folder). Unsupported ops, dtypes and types are one error naming the node.\n"
      "\n"
      "Example:\n"
      "  seqrun-export onnx model.onnx -o model.seqrun");
  convert->add_option("input", convert_args.input, "The .onnx file")->required()->check(CLI::ExistingFile);
  convert->add_option("-o,--output", convert_args.output, "The .seqrun file to write")->required();
  add_tokenizer_option(convert, convert_args.tokenizer);
  convert->add_option("--external-data-dir", convert_args.external_data_dir,
                      "Where tensors stored as external data live (default: the model's folder)");

  RwkvArgs rwkv_args;
  CLI::App* rwkv =
      app.add_subcommand("rwkv", "Convert an rwkv.cpp model file (RWKV v4, v5.1, v5.2, v7) into .seqrun");
  rwkv->footer(
      "Reads an FP32 or FP16 rwkv.cpp file and writes the sequence graph with explicit state:\n"
      "  inputs  tokens i64[batch, seq], then per layer state.<i>.att_shift, state.<i>.wkv, "
      "state.<i>.ffn_shift\n"
      "  outputs logits f32[batch, seq, vocab], then the new states in the same order.\n"
      "Zero states start a sequence; feed the new states back to continue it (one token or many at a time).\n"
      "A 256-token vocabulary (rwkv.cpp's tiny models) gets the byte tokenizer unless --tokenizer says "
      "otherwise.\n"
      "\n"
      "Example:\n"
      "  seqrun-export rwkv tiny-rwkv-5v2-730K-FP32.bin -o rwkv.seqrun");
  rwkv->add_option("input", rwkv_args.input, "The rwkv.cpp .bin file")->required()->check(CLI::ExistingFile);
  rwkv->add_option("-o,--output", rwkv_args.output, "The .seqrun file to write")->required();
  add_tokenizer_option(rwkv, rwkv_args.tokenizer);

  HfArgs hf_args;
  CLI::App* hf =
      app.add_subcommand("hf", "Convert a checkpoint folder (safetensors + config.json) into .seqrun");
  hf->footer(
      "DIR holds config.json and model.safetensors, or shards listed in model.safetensors.index.json.\n"
      "Architectures: gpt2, llama, mamba (chosen by config model_type or architectures), and Mamba in the\n"
      "original state-spaces layout (config d_model / n_layer / ssm_cfg). F32, F16 and BF16 weights "
      "(f16/bf16\n"
      "are stored as f32). The model takes input_ids i64[batch, seq] and returns logits f32[batch, seq, "
      "vocab];\n"
      "its metadata records architecture, vocab_size and the config's bos/eos/pad token ids.\n"
      "\n"
      "Example:\n"
      "  seqrun-export hf tests/data/hf/gpt2_fp32 -o gpt2.seqrun");
  hf->add_option("dir", hf_args.dir, "The checkpoint folder")->required()->check(CLI::ExistingDirectory);
  hf->add_option("-o,--output", hf_args.output, "The .seqrun file to write")->required();
  add_tokenizer_option(hf, hf_args.tokenizer);

  CheckArgs check_args;
  CLI::App* check = app.add_subcommand("check", "Run ONNX backend test folders and compare every output");
  check->footer(
      "Each DIR is a test folder (model.onnx + test_data_set_*/input_N.pb, output_N.pb) or a folder of\n"
      "them. Each test is imported, optimized (-O/--passes) and run on every data set. One line per test:\n"
      "  PASS|FAIL|ERROR|SKIP <name> (<reason>) ops: Op1=n Op2=m   (ops left after the passes)\n"
      "and last 'N passed, M failed[, K skipped]' (ERROR counts as failed). Floats match within\n"
      "|a-b| <= atol + rtol*|b| (rtol 1e-3, atol 1e-5; f16/bf16 outputs 1e-2, 1e-3), NaN matches NaN,\n"
      "integers and bools exactly. Exit code 0 only when nothing failed.\n"
      "\n"
      "Examples:\n"
      "  seqrun-export check tests/data/onnx-node\n"
      "  seqrun-export check -O0 tests/data/onnx-node/test_gelu_tanh_1\n"
      "  seqrun-export check --require-op Attention --forbid-op Softmax tests/data/models/gpt2_opset14\n"
      "  seqrun-export check --exclude tests/conformance-exclude.txt --skip-unsupported \\\n"
      "      /usr/share/libonnx-testdata/data/node");
  check->add_option("dirs", check_args.dirs, "Test folders, or folders of test folders")->required();
  CLI::Option* level = check
                           ->add_option("-O,--opt-level", check_args.opt_level,
                                        "Optimization level: -O0 runs no passes, -O1 the default pipeline")
                           ->check(CLI::Range(0, 1))
                           ->capture_default_str();
  check_args.passes_option = check
                                 ->add_option("--passes", check_args.passes,
                                              "Run exactly these passes, comma-separated (overrides -O)")
                                 ->delimiter(',')
                                 ->allow_extra_args(false)
                                 ->excludes(level);
  check
      ->add_option("--exclude", check_args.exclude_file,
                   "File of '<test-name>  # reason' lines (fnmatch patterns allowed); those tests print SKIP")
      ->check(CLI::ExistingFile);
  check
      ->add_option(
          "--backend", check_args.backend,
          "Where nodes run: cpu, cpu-reference, or cuda (nodes without a CUDA kernel run on the CPU)")
      ->capture_default_str();
  check
      ->add_option("--require-op", check_args.require_ops,
                   "FAIL a test whose graph after the passes has no node of this op (repeatable, or a,b)")
      ->delimiter(',')
      ->allow_extra_args(false);
  check
      ->add_option("--forbid-op", check_args.forbid_ops,
                   "FAIL a test whose graph after the passes still has a node of this op (repeatable or a,b)")
      ->delimiter(',')
      ->allow_extra_args(false);
  check->add_flag(
      "--skip-unsupported", check_args.skip_unsupported,
      "Print SKIP instead of ERROR for models with ops, dtypes or attribute forms seqrun does not "
      "support");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    return report_error(std::string(e.what()) + " (see 'seqrun-export --help')", kExitUsage);
  }
  spdlog::set_level(spdlog::level::warn);
  if (convert->parsed()) return run_convert(convert_args);
  if (rwkv->parsed()) return run_rwkv(rwkv_args);
  if (hf->parsed()) return run_hf(hf_args);
  if (check->parsed()) return run_check(check_args);
  return report_error("no command given (see 'seqrun-export --help')", kExitUsage);
}
