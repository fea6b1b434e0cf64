// Checkpoint folders -> IR graphs: picks the architecture builder for a folder's config.json.
//
// Hugging Face layout (config.json + model.safetensors, or shards + model.safetensors.index.json): the
// builder is chosen by config model_type ("gpt2", "llama", "mamba"), or else by architectures[0]
// (GPT2LMHeadModel, LlamaForCausalLM, MambaForCausalLM). The original state-spaces Mamba layout is a
// config.json without model_type that has d_model and n_layer (and ssm_cfg). Every graph takes
// input_ids i64[batch, seq] and returns logits f32[batch, seq, vocab]; weights stored as f16 / bf16 are
// converted to f32 at build time, f32 weights are zero-copy views of the mapped files.
#pragma once

#include <memory>
#include <string>

#include "ir/graph.h"
#include "ir/status.h"
#include "models/checkpoint_graph.h"

namespace seqrun::models {

// The graph plus metadata for a saved model: architecture, vocab_size, hidden_size, num_layers,
// bos/eos/pad token ids (when the config has them), source_format ("hf" | "state-spaces"),
// checkpoint_dtype, model_type.
Result<BuiltModel> build_model_from_checkpoint_dir(const std::string& dir);
Result<std::unique_ptr<Graph>> build_from_checkpoint_dir(const std::string& dir);

}  // namespace seqrun::models
