// Builds the graph of a Hugging Face Llama checkpoint (LlamaForCausalLM key names: model.embed_tokens,
// model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm,
// mlp.{gate,up,down}_proj}, model.norm, lm_head).
//
// Graph: input_ids i64[batch, seq] -> logits f32[batch, seq, vocab_size], as transformers computes it:
// RMSNormalization (rms_norm_eps); q/k/v projections (Linear, biases when attention_bias) split into heads
// with Reshape/Transpose; rotary embedding applied HF's way — cos/sin of positions × inv_freq computed in
// the graph from rope_theta (rope_scaling: default, linear or llama3), q·cos + rotate_half(q)·sin with
// rotate_half as Slice/Neg/Concat; grouped-query attention with each kv head repeated
// num_attention_heads / num_key_value_heads times (Unsqueeze + Expand + Reshape, like repeat_kv);
// MatMul(q, kᵀ) × head_dim^-0.5 + an additive causal mask (Trilu of finfo.min), Softmax, MatMul(·, v);
// o_proj; SwiGLU MLP down(act(gate(x)) · up(x)) with hidden_act; final norm and lm_head (the embedding when
// tie_word_embeddings). Rotary inv_freq buffers are ignored; any other unused tensor is an error.
#pragma once

#include "ir/status.h"
#include "models/checkpoint_graph.h"
#include "models/hf_config.h"
#include "models/safetensors.h"

namespace seqrun::models::llama {

Result<BuiltModel> build_llama(const HfConfig& config, const Checkpoint& checkpoint);

// The rotary inverse frequencies for `head_dim` (head_dim / 2 values) as transformers computes them in
// f32: 1 / rope_theta^(2i / head_dim), then rope_scaling (null/default, linear, llama3). Errors name the key.
Result<std::vector<float>> rope_inverse_frequencies(const HfConfig& config, int64_t head_dim);

}  // namespace seqrun::models::llama
