// Builds the graph of a Hugging Face GPT-2 checkpoint (GPT2LMHeadModel / GPT2Model key names, with or
// without the "transformer." prefix).
//
// Graph: input_ids i64[batch, seq] -> logits f32[batch, seq, vocab_size]. Token + learned position
// embeddings (Gather), n_layer pre-LN blocks — LayerNormalization; Conv1D projections as MatMul with the
// stored [in, out] weight + bias Add; attention as torch exports it: per-head Reshape/Transpose,
// MatMul(q, kᵀ), Div by sqrt(head_dim) (scale_attn_weights), Where(tril, scores, finfo.min), Softmax,
// MatMul(·, v); the MLP with the config's activation_function (gelu_new -> tanh Gelu) — then ln_f and the
// lm_head (tied to wte unless tie_word_embeddings is false). Registered attn.bias / attn.masked_bias
// buffers are ignored; any other tensor the model does not use is an error.
#pragma once

#include "ir/status.h"
#include "models/checkpoint_graph.h"
#include "models/hf_config.h"
#include "models/safetensors.h"

namespace seqrun::models::gpt2 {

Result<BuiltModel> build_gpt2(const HfConfig& config, const Checkpoint& checkpoint);

}  // namespace seqrun::models::gpt2
