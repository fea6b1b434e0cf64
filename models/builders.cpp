// Architecture dispatch for checkpoint folders (interface: models/builders.h).
#include "models/builders.h"

#include <filesystem>

#include "models/gpt2/gpt2_builder.h"
#include "models/hf_config.h"
#include "models/llama/llama_builder.h"
#include "models/mamba/mamba_builder.h"
#include "models/safetensors.h"

namespace seqrun::models {
namespace {

enum class Arch { gpt2, llama, mamba_hf, mamba_state_spaces };

Result<Arch> detect(const HfConfig& config) {
  if (config.has("model_type")) {
    SEQRUN_ASSIGN(std::string type, config.get_string("model_type"));
    if (type == "gpt2") return Arch::gpt2;
    if (type == "llama") return Arch::llama;
    if (type == "mamba") return Arch::mamba_hf;
    return make_error("{}: model_type '{}' is not supported (gpt2, llama, mamba)", config.path(), type);
  }
  SEQRUN_ASSIGN(std::vector<std::string> architectures, config.get_string_list("architectures"));
  if (!architectures.empty()) {
    const std::string& a = architectures[0];
    if (a == "GPT2LMHeadModel") return Arch::gpt2;
    if (a == "LlamaForCausalLM") return Arch::llama;
    if (a == "MambaForCausalLM") return Arch::mamba_hf;
    return make_error(
        "{}: architecture '{}' is not supported (GPT2LMHeadModel, LlamaForCausalLM, MambaForCausalLM)",
        config.path(), a);
  }
  if (mamba::is_state_spaces_config(config)) return Arch::mamba_state_spaces;
  return make_error(
      "{}: cannot tell the architecture: no model_type, no architectures, and not a state-spaces Mamba "
      "config "
      "(d_model, n_layer)",
      config.path());
}

}  // namespace

Result<BuiltModel> build_model_from_checkpoint_dir(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return make_error("{}: not a folder", dir);
  const std::string config_path = (std::filesystem::path(dir) / "config.json").string();
  SEQRUN_ASSIGN(HfConfig config, HfConfig::load(config_path));
  SEQRUN_ASSIGN(Arch arch, detect(config));
  SEQRUN_ASSIGN(Checkpoint checkpoint, Checkpoint::open_dir(dir));
  Result<BuiltModel> built = Status::error("unreachable");
  switch (arch) {
    case Arch::gpt2:
      built = gpt2::build_gpt2(config, checkpoint);
      break;
    case Arch::llama:
      built = llama::build_llama(config, checkpoint);
      break;
    case Arch::mamba_hf:
      built = mamba::build_mamba_hf(config, checkpoint);
      break;
    case Arch::mamba_state_spaces:
      built = mamba::build_mamba_state_spaces(config, checkpoint);
      break;
  }
  if (!built) return built.status();
  BuiltModel out = std::move(built).value();
  out.metadata["source_format"] = arch == Arch::mamba_state_spaces ? "state-spaces" : "hf";
  out.metadata["checkpoint_dtype"] = checkpoint.dominant_dtype();
  if (config.has("model_type")) {
    SEQRUN_ASSIGN(out.metadata["model_type"], config.get_string("model_type"));
  }
  return out;
}

Result<std::unique_ptr<Graph>> build_from_checkpoint_dir(const std::string& dir) {
  SEQRUN_ASSIGN(BuiltModel built, build_model_from_checkpoint_dir(dir));
  return std::move(built.graph);
}

}  // namespace seqrun::models
