// Builds the graph of a Mamba (v1) checkpoint in either layout:
//   Hugging Face (MambaForCausalLM): config model_type "mamba" (hidden_size, state_size, expand,
//     conv_kernel, time_step_rank, use_bias, use_conv_bias, layer_norm_epsilon); keys
//     backbone.embeddings.weight, backbone.layers.N.{norm.weight, mixer.*}, backbone.norm_f.weight, lm_head.
//   state-spaces (mamba_ssm's MambaLMHeadModel): config d_model, n_layer, vocab_size, ssm_cfg {d_state,
//     d_conv, expand, dt_rank, conv_bias, bias}, rms_norm, pad_vocab_size_multiple, tie_embeddings; keys
//     backbone.embedding.weight (vocab padded up to the multiple: the logits have the padded width),
//     backbone.layers.N.{norm.weight[, norm.bias], mixer.*}, backbone.norm_f.*, lm_head.weight.
// mixer.* = in_proj.weight [2·d_inner, d_model] (+bias), conv1d.weight [d_inner, 1, K] (+bias),
// x_proj.weight [dt_rank + 2N, d_inner], dt_proj.{weight [d_inner, dt_rank], bias}, A_log [d_inner, N],
// D [d_inner], out_proj.weight [d_model, d_inner] (+bias).
//
// Graph: input_ids i64[batch, seq] -> logits f32[batch, seq, vocab]. Each block is
// h += mixer(norm(h)) with the mixer in its primitive (unfused) form, channels last:
//   x, z = Split(Linear(u, in_proj));  x = Silu(Transpose(CausalConvWithState(Transpose(x), conv1d)))
//   dt, B, C = Split(Linear(x, x_proj));  Δ = Softplus(Linear(dt, dt_proj.weight) + dt_proj.bias)
//   A = Neg(Exp(A_log));  a = Exp(Unsqueeze(Δ, -1) · A)          [batch, seq, d_inner, N]
//   b = Unsqueeze(Δ · x, -1) · Unsqueeze(B, 2)                    [batch, seq, d_inner, N]
//   h_all = LinearRecurrence(a, b) {axis = 1}                     h_t = a_t ⊙ h_{t-1} + b_t
//   y = ReduceSum(h_all · Unsqueeze(C, 2), axes = [-1]) + x · D;  y = y · Silu(z);  Linear(y, out_proj)
// which the fuse-ssm-scan pass turns into one SelectiveScan. Every tensor must be used (lm_head.weight is
// ignored when the embedding is tied).
#pragma once

#include "ir/status.h"
#include "models/checkpoint_graph.h"
#include "models/hf_config.h"
#include "models/safetensors.h"

namespace seqrun::models::mamba {

Result<BuiltModel> build_mamba_hf(const HfConfig& config, const Checkpoint& checkpoint);
Result<BuiltModel> build_mamba_state_spaces(const HfConfig& config, const Checkpoint& checkpoint);

// True when a config without model_type looks like mamba_ssm's (d_model and n_layer present).
bool is_state_spaces_config(const HfConfig& config);

}  // namespace seqrun::models::mamba
