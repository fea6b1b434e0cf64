// Mamba checkpoints (Hugging Face and state-spaces layouts) -> IR graph (interface:
// models/mamba/mamba_builder.h).
#include "models/mamba/mamba_builder.h"

#include <cmath>
#include <string>
#include <vector>

namespace seqrun::models::mamba {
namespace {

struct MambaSpec {
  int64_t vocab = 0;  // embedding rows = logits width
  int64_t width = 0;  // d_model
  int64_t inner = 0;  // d_inner
  int64_t state = 0;  // N
  int64_t conv = 0;   // K
  int64_t dt_rank = 0;
  int64_t layers = 0;
  float eps = 1e-5f;
  bool rms_norm = true;  // else LayerNorm with bias
  bool in_out_bias = false;
  bool conv_bias = true;
  bool tied = true;
  std::string activation = "silu";
  std::string embedding;  // key of the embedding table
  std::string layout;     // "hf" / "state-spaces"
};

// "auto" -> ceil(d_model / 16), else a positive integer.
Result<int64_t> read_dt_rank(const HfConfig& c, const std::string& key, int64_t width) {
  if (!c.has(key)) return (width + 15) / 16;
  auto text = c.get_string(key);
  if (text) {
    if (text.value() != "auto")
      return make_error("{} must be \"auto\" or an integer, got \"{}\"", c.where(key), text.value());
    return (width + 15) / 16;
  }
  return c.get_positive_int(key);
}

Result<MambaSpec> read_hf_spec(const HfConfig& c) {
  MambaSpec s;
  s.layout = "hf";
  s.embedding = "backbone.embeddings.weight";
  SEQRUN_ASSIGN(s.vocab, c.get_positive_int("vocab_size"));
  SEQRUN_ASSIGN(s.width, c.get_positive_int("hidden_size"));
  SEQRUN_ASSIGN(s.state, c.get_positive_int("state_size", 16));
  SEQRUN_ASSIGN(s.layers, c.get_positive_int("num_hidden_layers"));
  SEQRUN_ASSIGN(int64_t expand, c.get_positive_int("expand", 2));
  SEQRUN_ASSIGN(s.inner, c.get_positive_int("intermediate_size", expand * s.width));
  SEQRUN_ASSIGN(s.conv, c.get_positive_int("conv_kernel", 4));
  SEQRUN_ASSIGN(s.dt_rank, read_dt_rank(c, "time_step_rank", s.width));
  SEQRUN_ASSIGN(double eps, c.get_float("layer_norm_epsilon", 1e-5));
  s.eps = static_cast<float>(eps);
  SEQRUN_ASSIGN(s.in_out_bias, c.get_bool("use_bias", false));
  SEQRUN_ASSIGN(s.conv_bias, c.get_bool("use_conv_bias", true));
  SEQRUN_ASSIGN(s.tied, c.get_bool("tie_word_embeddings", true));
  SEQRUN_ASSIGN(s.activation, c.get_string("hidden_act", "silu"));
  return s;
}

Result<MambaSpec> read_state_spaces_spec(const HfConfig& c) {
  MambaSpec s;
  s.layout = "state-spaces";
  s.embedding = "backbone.embedding.weight";
  SEQRUN_ASSIGN(s.width, c.get_positive_int("d_model"));
  SEQRUN_ASSIGN(s.layers, c.get_positive_int("n_layer"));
  SEQRUN_ASSIGN(int64_t vocab, c.get_positive_int("vocab_size"));
  SEQRUN_ASSIGN(int64_t multiple, c.get_positive_int("pad_vocab_size_multiple", 8));
  s.vocab = vocab % multiple == 0 ? vocab : vocab + multiple - vocab % multiple;
  SEQRUN_ASSIGN(int64_t d_intermediate, c.get_int("d_intermediate", 0));
  if (d_intermediate != 0) {
    return make_error("{}: blocks with an MLP (d_intermediate {}) are not supported",
                      c.where("d_intermediate"), d_intermediate);
  }
  SEQRUN_ASSIGN(std::vector<int64_t> attn_layers, c.get_int_list("attn_layer_idx"));
  if (!attn_layers.empty())
    return make_error("{}: hybrid attention layers are not supported", c.where("attn_layer_idx"));
  SEQRUN_ASSIGN(HfConfig ssm, c.get_object("ssm_cfg"));
  SEQRUN_ASSIGN(std::string layer, ssm.get_string("layer", "Mamba1"));
  if (layer != "Mamba1")
    return make_error("{}: '{}' is not supported (Mamba1 only)", ssm.where("layer"), layer);
  SEQRUN_ASSIGN(s.state, ssm.get_positive_int("d_state", 16));
  SEQRUN_ASSIGN(s.conv, ssm.get_positive_int("d_conv", 4));
  SEQRUN_ASSIGN(int64_t expand, ssm.get_positive_int("expand", 2));
  s.inner = expand * s.width;
  SEQRUN_ASSIGN(s.dt_rank, read_dt_rank(ssm, "dt_rank", s.width));
  SEQRUN_ASSIGN(s.conv_bias, ssm.get_bool("conv_bias", true));
  SEQRUN_ASSIGN(s.in_out_bias, ssm.get_bool("bias", false));
  SEQRUN_ASSIGN(s.rms_norm, c.get_bool("rms_norm", true));
  SEQRUN_ASSIGN(double eps, c.get_float("norm_epsilon", 1e-5));
  s.eps = static_cast<float>(eps);
  SEQRUN_ASSIGN(s.tied, c.get_bool("tie_embeddings", true));
  return s;
}

Result<Value*> norm(CheckpointGraph& b, const MambaSpec& s, Value* x, const std::string& prefix) {
  SEQRUN_ASSIGN(Value * w, b.weight(prefix + ".weight", {s.width}));
  if (s.rms_norm) return b.rms_norm(x, w, s.eps, prefix);
  SEQRUN_ASSIGN(Value * bias, b.weight(prefix + ".bias", {s.width}));
  return b.layer_norm(x, w, bias, s.eps, prefix);
}

// The mixer on u [batch, seq, d_model] (see the header for the dataflow).
Result<Value*> mixer(CheckpointGraph& b, const MambaSpec& s, const HfConfig& c, Value* u,
                     const std::string& p) {
  const int64_t I = s.inner;
  const int64_t N = s.state;
  SEQRUN_ASSIGN(Value * w_in, b.weight(p + "in_proj.weight", {2 * I, s.width}));
  Value* b_in = nullptr;
  if (s.in_out_bias) {
    SEQRUN_ASSIGN(b_in, b.weight(p + "in_proj.bias", {2 * I}));
  }
  std::vector<Value*> xz = b.split_last(b.linear(u, w_in, b_in, p + "in_proj"), {I, I}, p + "xz");

  // Depthwise causal convolution over the sequence, channels first as the conv op wants them.
  SEQRUN_ASSIGN(Value * w_conv, b.weight(p + "conv1d.weight", {I, 1, s.conv}));
  std::vector<Value*> conv_inputs = {b.transpose(xz[0], {0, 2, 1}, p + "x.channels"), w_conv};
  if (s.conv_bias) {
    SEQRUN_ASSIGN(Value * b_conv, b.weight(p + "conv1d.bias", {I}));
    conv_inputs.push_back(b_conv);
  }
  Value* conv = b.op("CausalConvWithState", conv_inputs, p + "conv1d");
  Value* conv_tokens = b.transpose(conv, {0, 2, 1}, p + "conv1d.tokens");
  SEQRUN_ASSIGN(Value * x, b.activation(s.activation, conv_tokens, c.where("hidden_act"), p + "x"));

  // Input-dependent Δ, B, C.
  SEQRUN_ASSIGN(Value * w_x, b.weight(p + "x_proj.weight", {s.dt_rank + 2 * N, I}));
  std::vector<Value*> dbc =
      b.split_last(b.linear(x, w_x, nullptr, p + "x_proj"), {s.dt_rank, N, N}, p + "dbc");
  SEQRUN_ASSIGN(Value * w_dt, b.weight(p + "dt_proj.weight", {I, s.dt_rank}));
  SEQRUN_ASSIGN(Value * b_dt, b.weight(p + "dt_proj.bias", {I}));
  Value* dt = b.op("Add", {b.linear(dbc[0], w_dt, nullptr, p + "dt_proj"), b_dt}, p + "dt_proj.biased");
  Value* delta = b.op("Softplus", {dt}, p + "delta");

  // Discretization and the scan.
  SEQRUN_ASSIGN(Value * a_log, b.weight(p + "A_log", {I, N}));
  Value* A = b.op("Neg", {b.op("Exp", {a_log}, p + "A.exp")}, p + "A");
  Value* delta_col = b.unsqueeze(delta, {-1}, p + "delta.col");
  Value* decay = b.op("Exp", {b.op("Mul", {delta_col, A}, p + "deltaA")}, p + "decay");
  Value* delta_x = b.op("Mul", {delta, x}, p + "delta_x");
  Value* B_row = b.unsqueeze(dbc[1], {2}, p + "B.row");
  Value* inject = b.op("Mul", {b.unsqueeze(delta_x, {-1}, p + "delta_x.col"), B_row}, p + "deltaBx");
  Value* states = b.op("LinearRecurrence", {decay, inject}, p + "scan", {{"axis", int64_t{1}}});

  // Readout, skip, gate, output projection.
  Value* C_row = b.unsqueeze(dbc[2], {2}, p + "C.row");
  Value* y = b.op("ReduceSum", {b.op("Mul", {states, C_row}, p + "hC"), b.ints({-1})}, p + "y",
                  {{"keepdims", int64_t{0}}});
  SEQRUN_ASSIGN(Value * D, b.weight(p + "D", {I}));
  y = b.op("Add", {y, b.op("Mul", {x, D}, p + "Dx")}, p + "y.skip");
  SEQRUN_ASSIGN(Value * gate, b.activation(s.activation, xz[1], c.where("hidden_act"), p + "gate"));
  y = b.op("Mul", {y, gate}, p + "y.gated");
  SEQRUN_ASSIGN(Value * w_out, b.weight(p + "out_proj.weight", {s.width, I}));
  Value* b_out = nullptr;
  if (s.in_out_bias) {
    SEQRUN_ASSIGN(b_out, b.weight(p + "out_proj.bias", {s.width}));
  }
  return b.linear(y, w_out, b_out, p + "out_proj");
}

Result<BuiltModel> build(const MambaSpec& s, const HfConfig& config, const Checkpoint& checkpoint) {
  CheckpointGraph b(checkpoint, "mamba");
  SEQRUN_ASSIGN(Value * embed, b.weight(s.embedding, {s.vocab, s.width}));
  Value* h = b.op("Gather", {embed, b.input_ids()}, "embed", {{"axis", int64_t{0}}});
  for (int64_t layer = 0; layer < s.layers; ++layer) {
    const std::string p = "backbone.layers." + std::to_string(layer) + ".";
    SEQRUN_ASSIGN(Value * x, norm(b, s, h, p + "norm"));
    SEQRUN_ASSIGN(Value * m, mixer(b, s, config, x, p + "mixer."));
    h = b.op("Add", {h, m}, p + "residual");
  }
  SEQRUN_ASSIGN(h, norm(b, s, h, "backbone.norm_f"));
  Value* head = embed;
  if (s.tied) {
    b.ignore("lm_head.weight");  // tied to the embedding (some exports save the shared tensor twice)
  } else {
    SEQRUN_ASSIGN(head, b.weight("lm_head.weight", {s.vocab, s.width}));
  }
  Value* logits = b.linear(h, head, nullptr, "lm_head");
  SEQRUN_TRY(b.check_all_used(fmt::format("a Mamba model ({} layout) with {} layers", s.layout, s.layers)));

  BuiltModel out;
  SEQRUN_ASSIGN(out.graph, b.finish(logits));
  out.metadata["architecture"] = "mamba";
  out.metadata["checkpoint_layout"] = s.layout;
  out.metadata["vocab_size"] = std::to_string(s.vocab);
  out.metadata["hidden_size"] = std::to_string(s.width);
  out.metadata["num_layers"] = std::to_string(s.layers);
  out.metadata["d_inner"] = std::to_string(s.inner);
  out.metadata["d_state"] = std::to_string(s.state);
  out.metadata["d_conv"] = std::to_string(s.conv);
  SEQRUN_TRY(add_token_metadata(config, out.metadata));
  return out;
}

}  // namespace

bool is_state_spaces_config(const HfConfig& config) {
  return !config.has("model_type") && config.has("d_model") && config.has("n_layer");
}

Result<BuiltModel> build_mamba_hf(const HfConfig& config, const Checkpoint& checkpoint) {
  SEQRUN_ASSIGN(MambaSpec s, read_hf_spec(config));
  return build(s, config, checkpoint);
}

Result<BuiltModel> build_mamba_state_spaces(const HfConfig& config, const Checkpoint& checkpoint) {
  SEQRUN_ASSIGN(MambaSpec s, read_state_spaces_spec(config));
  SEQRUN_ASSIGN(BuiltModel out, build(s, config, checkpoint));
  SEQRUN_ASSIGN(int64_t vocab, config.get_positive_int("vocab_size"));
  out.metadata["config_vocab_size"] = std::to_string(vocab);
  return out;
}

}  // namespace seqrun::models::mamba
