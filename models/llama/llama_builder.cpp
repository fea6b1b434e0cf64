// Llama checkpoint -> IR graph, following transformers' LlamaForCausalLM (interface:
// models/llama/llama_builder.h).
#include "models/llama/llama_builder.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace seqrun::models::llama {
namespace {

constexpr int64_t kOnnxFloat = 1;  // Cast's `to` for f32 (ONNX TensorProto.FLOAT)

struct LlamaSpec {
  int64_t vocab = 0;
  int64_t width = 0;  // hidden_size
  int64_t inner = 0;  // intermediate_size
  int64_t layers = 0;
  int64_t heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  float eps = 1e-6f;
  bool attention_bias = false;
  bool mlp_bias = false;
  bool tied = false;
  std::string activation;
};

Result<LlamaSpec> read_spec(const HfConfig& c) {
  LlamaSpec s;
  SEQRUN_ASSIGN(s.vocab, c.get_positive_int("vocab_size"));
  SEQRUN_ASSIGN(s.width, c.get_positive_int("hidden_size"));
  SEQRUN_ASSIGN(s.inner, c.get_positive_int("intermediate_size"));
  SEQRUN_ASSIGN(s.layers, c.get_positive_int("num_hidden_layers"));
  SEQRUN_ASSIGN(s.heads, c.get_positive_int("num_attention_heads"));
  SEQRUN_ASSIGN(s.kv_heads, c.get_positive_int("num_key_value_heads", s.heads));
  if (!c.has("head_dim") && s.width % s.heads != 0) {
    return make_error("{}: hidden_size {} is not a multiple of num_attention_heads {}", c.path(), s.width,
                      s.heads);
  }
  SEQRUN_ASSIGN(s.head_dim, c.get_positive_int("head_dim", s.width / s.heads));
  if (s.head_dim % 2 != 0)
    return make_error("{} must be even for rotary embeddings, is {}", c.where("head_dim"), s.head_dim);
  if (s.heads % s.kv_heads != 0) {
    return make_error("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", c.path(),
                      s.heads, s.kv_heads);
  }
  SEQRUN_ASSIGN(double eps, c.get_float("rms_norm_eps", 1e-6));
  s.eps = static_cast<float>(eps);
  SEQRUN_ASSIGN(s.attention_bias, c.get_bool("attention_bias", false));
  SEQRUN_ASSIGN(s.mlp_bias, c.get_bool("mlp_bias", false));
  SEQRUN_ASSIGN(s.tied, c.get_bool("tie_word_embeddings", false));
  SEQRUN_ASSIGN(s.activation, c.get_string("hidden_act", "silu"));
  return s;
}

// The rotary tables cos, sin [seq, head_dim] for positions 0..seq-1: emb = concat(freqs, freqs) with
// freqs[t, i] = t · inv_freq[i], computed in f32 as transformers does.
struct Rotary {
  Value* cos;
  Value* sin;
};

Rotary rotary_tables(CheckpointGraph& b, const std::vector<float>& inv_freq) {
  Value* inv = b.float_vector("rotary.inv_freq", inv_freq);
  Value* pos = b.op("Cast", {b.positions()}, "rotary.positions", {{"to", kOnnxFloat}});
  Value* freqs = b.op("Mul", {b.unsqueeze(pos, {1}, "rotary.positions.col"), inv}, "rotary.freqs");
  Value* emb = b.op("Concat", {freqs, freqs}, "rotary.emb", {{"axis", int64_t{-1}}});
  return {b.op("Cos", {emb}, "rotary.cos"), b.op("Sin", {emb}, "rotary.sin")};
}

// x·cos + rotate_half(x)·sin on x [batch, heads, seq, head_dim]; rotate_half(x) = concat(-x2, x1).
Value* apply_rotary(CheckpointGraph& b, const Rotary& r, Value* x, int64_t head_dim,
                    const std::string& name) {
  const int64_t half = head_dim / 2;
  Value* x1 = b.slice(x, 0, half, -1, name + ".x1");
  Value* x2 = b.slice(x, half, head_dim, -1, name + ".x2");
  Value* rotated = b.op("Concat", {b.op("Neg", {x2}, name + ".neg_x2"), x1}, name + ".rotate_half",
                        {{"axis", int64_t{-1}}});
  return b.op("Add", {b.op("Mul", {x, r.cos}, name + ".cos"), b.op("Mul", {rotated, r.sin}, name + ".sin")},
              name);
}

// repeat_kv: [batch, kv, seq, d] -> [batch, kv * n_rep, seq, d], each kv head n_rep times in a row.
Value* repeat_kv(CheckpointGraph& b, Value* x, int64_t n_rep, int64_t heads, int64_t head_dim,
                 const std::string& name) {
  if (n_rep == 1) return x;
  Value* wide = b.unsqueeze(x, {2}, name + ".unsqueezed");
  Value* expanded = b.op("Expand", {wide, b.ints({1, 1, n_rep, 1, 1})}, name + ".expanded");
  return b.reshape(expanded, {0, heads, -1, head_dim}, name);
}

Result<Value*> projection(CheckpointGraph& b, Value* x, const std::string& prefix, int64_t out, int64_t in,
                          bool bias, const std::string& name) {
  SEQRUN_ASSIGN(Value * w, b.weight(prefix + ".weight", {out, in}));
  Value* bv = nullptr;
  if (bias) {
    SEQRUN_ASSIGN(bv, b.weight(prefix + ".bias", {out}));
  }
  return b.linear(x, w, bv, name);
}

Result<Value*> attention(CheckpointGraph& b, const LlamaSpec& s, Value* x, const Rotary& rotary, Value* mask,
                         const std::string& p) {
  const int64_t hd = s.head_dim;
  const std::string a = p + "self_attn.";
  SEQRUN_ASSIGN(Value * q, projection(b, x, a + "q_proj", s.heads * hd, s.width, s.attention_bias, a + "q"));
  SEQRUN_ASSIGN(Value * k,
                projection(b, x, a + "k_proj", s.kv_heads * hd, s.width, s.attention_bias, a + "k"));
  SEQRUN_ASSIGN(Value * v,
                projection(b, x, a + "v_proj", s.kv_heads * hd, s.width, s.attention_bias, a + "v"));
  q = apply_rotary(b, rotary, b.split_heads(q, s.heads, hd, a + "q.heads"), hd, a + "q.rotary");
  k = apply_rotary(b, rotary, b.split_heads(k, s.kv_heads, hd, a + "k.heads"), hd, a + "k.rotary");
  v = b.split_heads(v, s.kv_heads, hd, a + "v.heads");
  const int64_t n_rep = s.heads / s.kv_heads;
  k = repeat_kv(b, k, n_rep, s.heads, hd, a + "k.repeated");
  v = repeat_kv(b, v, n_rep, s.heads, hd, a + "v.repeated");
  Value* kt = b.transpose(k, {0, 1, 3, 2}, a + "k_t");
  Value* scores = b.op("MatMul", {q, kt}, a + "scores");
  const float scaling = static_cast<float>(std::pow(static_cast<double>(hd), -0.5));
  scores = b.op("Mul", {scores, b.float_scalar(scaling)}, a + "scaled");
  scores = b.op("Add", {scores, mask}, a + "masked");
  Value* probs = b.op("Softmax", {scores}, a + "probs", {{"axis", int64_t{-1}}});
  Value* context = b.op("MatMul", {probs, v}, a + "context");
  Value* merged = b.merge_heads(context, s.heads * hd, a + "merged");
  b.ignore(a + "rotary_emb.inv_freq");  // a buffer older checkpoints saved
  return projection(b, merged, a + "o_proj", s.width, s.heads * hd, s.attention_bias, a + "out");
}

Result<Value*> mlp(CheckpointGraph& b, const LlamaSpec& s, const HfConfig& c, Value* x,
                   const std::string& p) {
  const std::string m = p + "mlp.";
  SEQRUN_ASSIGN(Value * gate, projection(b, x, m + "gate_proj", s.inner, s.width, s.mlp_bias, m + "gate"));
  SEQRUN_ASSIGN(Value * up, projection(b, x, m + "up_proj", s.inner, s.width, s.mlp_bias, m + "up"));
  SEQRUN_ASSIGN(Value * act, b.activation(s.activation, gate, c.where("hidden_act"), m + "act"));
  Value* product = b.op("Mul", {act, up}, m + "product");
  return projection(b, product, m + "down_proj", s.width, s.inner, s.mlp_bias, m + "out");
}

}  // namespace

Result<std::vector<float>> rope_inverse_frequencies(const HfConfig& config, int64_t head_dim) {
  SEQRUN_ASSIGN(double theta_d, config.get_float("rope_theta", 10000.0));
  if (!(theta_d > 1.0)) return make_error("{} must be > 1, is {}", config.where("rope_theta"), theta_d);
  const float theta = static_cast<float>(theta_d);
  std::vector<float> inv(static_cast<size_t>(head_dim / 2));
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    inv[i] = 1.0f / std::pow(theta, exponent);
  }
  if (!config.has("rope_scaling")) return inv;
  SEQRUN_ASSIGN(HfConfig scaling, config.get_object("rope_scaling"));
  std::string kind;
  if (scaling.has("rope_type")) {
    SEQRUN_ASSIGN(kind, scaling.get_string("rope_type"));
  } else {
    SEQRUN_ASSIGN(kind, scaling.get_string("type", "default"));
  }
  if (kind == "default") return inv;
  SEQRUN_ASSIGN(double factor_d, scaling.get_float("factor"));
  if (!(factor_d > 0.0)) return make_error("{} must be positive, is {}", scaling.where("factor"), factor_d);
  const float factor = static_cast<float>(factor_d);
  if (kind == "linear") {
    for (float& f : inv) f /= factor;
    return inv;
  }
  if (kind != "llama3") {
    return make_error("{}: rope type '{}' is not supported (default, linear, llama3)",
                      scaling.where("rope_type"), kind);
  }
  // transformers' _compute_llama3_parameters: wavelengths shorter than old_context / high_freq_factor keep
  // their frequency, longer than old_context / low_freq_factor divide it by `factor`, the band between
  // interpolates smoothly.
  SEQRUN_ASSIGN(double low_d, scaling.get_float("low_freq_factor"));
  SEQRUN_ASSIGN(double high_d, scaling.get_float("high_freq_factor"));
  SEQRUN_ASSIGN(int64_t old_context_i, scaling.get_positive_int("original_max_position_embeddings"));
  if (!(high_d > low_d) || !(low_d > 0.0)) {
    return make_error("{}: needs 0 < low_freq_factor < high_freq_factor, got {} and {}",
                      scaling.where("rope_type"), low_d, high_d);
  }
  const float low = static_cast<float>(low_d);
  const float high = static_cast<float>(high_d);
  const float old_context = static_cast<float>(old_context_i);
  const float low_freq_wavelen = old_context / low;
  const float high_freq_wavelen = old_context / high;
  const float two_pi = static_cast<float>(2.0 * M_PI);
  for (float& f : inv) {
    const float wavelen = two_pi / f;
    const float divided = wavelen > low_freq_wavelen ? f / factor : f;
    const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    if (medium) {
      const float smooth = (old_context / wavelen - low) / (high - low);
      f = (1.0f - smooth) * divided / factor + smooth * divided;
    } else {
      f = divided;
    }
  }
  return inv;
}

Result<BuiltModel> build_llama(const HfConfig& config, const Checkpoint& checkpoint) {
  SEQRUN_ASSIGN(LlamaSpec s, read_spec(config));
  SEQRUN_ASSIGN(std::vector<float> inv_freq, rope_inverse_frequencies(config, s.head_dim));
  CheckpointGraph b(checkpoint, "llama");
  SEQRUN_ASSIGN(Value * embed, b.weight("model.embed_tokens.weight", {s.vocab, s.width}));
  Value* h = b.op("Gather", {embed, b.input_ids()}, "embed", {{"axis", int64_t{0}}});
  const Rotary rotary = rotary_tables(b, inv_freq);
  Value* lowest = b.op("ConstantOfShape", {b.seq_by_seq_shape()}, "causal.fill",
                       {{"value", Tensor::from_vector<float>({1}, {std::numeric_limits<float>::lowest()})}});
  Value* mask = b.op("Trilu", {lowest, b.int_scalar(1)}, "causal", {{"upper", int64_t{1}}});

  for (int64_t layer = 0; layer < s.layers; ++layer) {
    const std::string p = "model.layers." + std::to_string(layer) + ".";
    SEQRUN_ASSIGN(Value * norm1, b.weight(p + "input_layernorm.weight", {s.width}));
    Value* x = b.rms_norm(h, norm1, s.eps, p + "input_layernorm");
    SEQRUN_ASSIGN(Value * attn, attention(b, s, x, rotary, mask, p));
    h = b.op("Add", {h, attn}, p + "residual.attn");
    SEQRUN_ASSIGN(Value * norm2, b.weight(p + "post_attention_layernorm.weight", {s.width}));
    Value* x2 = b.rms_norm(h, norm2, s.eps, p + "post_attention_layernorm");
    SEQRUN_ASSIGN(Value * m, mlp(b, s, config, x2, p));
    h = b.op("Add", {h, m}, p + "residual.mlp");
  }
  SEQRUN_ASSIGN(Value * norm_f, b.weight("model.norm.weight", {s.width}));
  h = b.rms_norm(h, norm_f, s.eps, "model.norm");
  Value* head = embed;
  if (s.tied) {
    b.ignore("lm_head.weight");  // transformers ties it to the embedding
  } else {
    SEQRUN_ASSIGN(head, b.weight("lm_head.weight", {s.vocab, s.width}));
  }
  Value* logits = b.linear(h, head, nullptr, "lm_head");
  SEQRUN_TRY(b.check_all_used(fmt::format("a Llama model with {} layers", s.layers)));

  BuiltModel out;
  SEQRUN_ASSIGN(out.graph, b.finish(logits));
  SEQRUN_ASSIGN(int64_t max_positions, config.get_positive_int("max_position_embeddings", 2048));
  out.metadata["architecture"] = "llama";
  out.metadata["vocab_size"] = std::to_string(s.vocab);
  out.metadata["hidden_size"] = std::to_string(s.width);
  out.metadata["num_layers"] = std::to_string(s.layers);
  out.metadata["num_heads"] = std::to_string(s.heads);
  out.metadata["num_kv_heads"] = std::to_string(s.kv_heads);
  out.metadata["head_dim"] = std::to_string(s.head_dim);
  out.metadata["max_position_embeddings"] = std::to_string(max_positions);
  SEQRUN_TRY(add_token_metadata(config, out.metadata));
  return out;
}

}  // namespace seqrun::models::llama
