// GPT-2 checkpoint -> IR graph, following transformers' GPT2LMHeadModel (interface:
// models/gpt2/gpt2_builder.h).
#include "models/gpt2/gpt2_builder.h"

#include <cmath>
#include <limits>
#include <string>

namespace seqrun::models::gpt2 {
namespace {

struct Gpt2Spec {
  int64_t vocab = 0;
  int64_t width = 0;  // n_embd
  int64_t heads = 0;
  int64_t layers = 0;
  int64_t positions = 0;
  int64_t inner = 0;  // MLP width
  float eps = 1e-5f;
  std::string activation;
  bool scale_attn = true;
  bool scale_by_layer = false;
  bool tied = true;
  std::string prefix;  // "transformer." or ""
};

Result<Gpt2Spec> read_spec(const HfConfig& c, const Checkpoint& ckpt) {
  Gpt2Spec s;
  SEQRUN_ASSIGN(s.vocab, c.get_positive_int("vocab_size"));
  SEQRUN_ASSIGN(s.width, c.get_positive_int("n_embd"));
  SEQRUN_ASSIGN(s.heads, c.get_positive_int("n_head"));
  SEQRUN_ASSIGN(s.layers, c.get_positive_int("n_layer"));
  SEQRUN_ASSIGN(int64_t n_ctx, c.get_positive_int("n_ctx", 1024));
  SEQRUN_ASSIGN(s.positions, c.get_positive_int("n_positions", n_ctx));
  SEQRUN_ASSIGN(s.inner, c.get_positive_int("n_inner", 4 * s.width));
  SEQRUN_ASSIGN(double eps, c.get_float("layer_norm_epsilon", 1e-5));
  s.eps = static_cast<float>(eps);
  SEQRUN_ASSIGN(s.activation, c.get_string("activation_function", "gelu_new"));
  SEQRUN_ASSIGN(s.scale_attn, c.get_bool("scale_attn_weights", true));
  SEQRUN_ASSIGN(s.scale_by_layer, c.get_bool("scale_attn_by_inverse_layer_idx", false));
  SEQRUN_ASSIGN(s.tied, c.get_bool("tie_word_embeddings", true));
  SEQRUN_ASSIGN(bool cross, c.get_bool("add_cross_attention", false));
  if (cross)
    return make_error("{}: cross-attention GPT-2 models are not supported", c.where("add_cross_attention"));
  if (s.width % s.heads != 0) {
    return make_error("{}: n_embd {} is not a multiple of n_head {}", c.path(), s.width, s.heads);
  }
  s.prefix = ckpt.contains("transformer.wte.weight") ? "transformer."
             : ckpt.contains("wte.weight")           ? ""
                                                     : "transformer.";
  return s;
}

// x · W + b with a Conv1D weight stored [in, out]: the MatMul + Add a torch export has.
Result<Value*> conv1d(CheckpointGraph& b, Value* x, const std::string& prefix, int64_t in, int64_t out,
                      const std::string& name) {
  SEQRUN_ASSIGN(Value * w, b.weight(prefix + ".weight", {in, out}));
  SEQRUN_ASSIGN(Value * bias, b.weight(prefix + ".bias", {out}));
  return b.op("Add", {b.op("MatMul", {x, w}, name + ".matmul"), bias}, name);
}

Result<Value*> layer_norm(CheckpointGraph& b, const Gpt2Spec& s, Value* x, const std::string& prefix,
                          const std::string& name) {
  SEQRUN_ASSIGN(Value * w, b.weight(prefix + ".weight", {s.width}));
  SEQRUN_ASSIGN(Value * bias, b.weight(prefix + ".bias", {s.width}));
  return b.layer_norm(x, w, bias, s.eps, name);
}

// Causal self-attention of block `layer` on x [batch, seq, width]; `causal` is bool [seq, seq], true on and
// below the diagonal.
Result<Value*> attention(CheckpointGraph& b, const Gpt2Spec& s, Value* x, Value* causal, int64_t layer,
                         const std::string& p) {
  const int64_t d = s.width;
  const int64_t head_dim = d / s.heads;
  SEQRUN_ASSIGN(Value * qkv, conv1d(b, x, p + "attn.c_attn", d, 3 * d, p + "attn.qkv"));
  std::vector<Value*> parts = b.split_last(qkv, {d, d, d}, p + "attn.split");
  Value* q = b.split_heads(parts[0], s.heads, head_dim, p + "attn.q");
  Value* k = b.split_heads(parts[1], s.heads, head_dim, p + "attn.k");
  Value* v = b.split_heads(parts[2], s.heads, head_dim, p + "attn.v");
  Value* kt = b.transpose(k, {0, 1, 3, 2}, p + "attn.k_t");
  Value* scores = b.op("MatMul", {q, kt}, p + "attn.scores");
  if (s.scale_attn) {
    const float root = static_cast<float>(std::sqrt(static_cast<double>(head_dim)));
    scores = b.op("Div", {scores, b.float_scalar(root)}, p + "attn.scaled");
  }
  if (s.scale_by_layer) {
    scores = b.op("Div", {scores, b.float_scalar(static_cast<float>(layer + 1))}, p + "attn.layer_scaled");
  }
  Value* lowest = b.float_scalar(std::numeric_limits<float>::lowest());
  Value* masked = b.op("Where", {causal, scores, lowest}, p + "attn.masked");
  Value* probs = b.op("Softmax", {masked}, p + "attn.probs", {{"axis", int64_t{-1}}});
  Value* context = b.op("MatMul", {probs, v}, p + "attn.context");
  Value* merged = b.merge_heads(context, d, p + "attn.merged");
  b.ignore(p + "attn.bias");  // the registered causal-mask buffer older checkpoints carry
  b.ignore(p + "attn.masked_bias");
  return conv1d(b, merged, p + "attn.c_proj", d, d, p + "attn.out");
}

Result<Value*> mlp(CheckpointGraph& b, const Gpt2Spec& s, const HfConfig& c, Value* x, const std::string& p) {
  SEQRUN_ASSIGN(Value * up, conv1d(b, x, p + "mlp.c_fc", s.width, s.inner, p + "mlp.fc"));
  SEQRUN_ASSIGN(Value * act, b.activation(s.activation, up, c.where("activation_function"), p + "mlp.act"));
  return conv1d(b, act, p + "mlp.c_proj", s.inner, s.width, p + "mlp.out");
}

}  // namespace

Result<BuiltModel> build_gpt2(const HfConfig& config, const Checkpoint& checkpoint) {
  SEQRUN_ASSIGN(Gpt2Spec s, read_spec(config, checkpoint));
  CheckpointGraph b(checkpoint, "gpt2");
  const std::string& t = s.prefix;
  SEQRUN_ASSIGN(Value * wte, b.weight(t + "wte.weight", {s.vocab, s.width}));
  SEQRUN_ASSIGN(Value * wpe, b.weight(t + "wpe.weight", {s.positions, s.width}));
  Value* tokens = b.op("Gather", {wte, b.input_ids()}, "embed.tokens", {{"axis", int64_t{0}}});
  Value* places = b.op("Gather", {wpe, b.positions()}, "embed.positions", {{"axis", int64_t{0}}});
  Value* h = b.op("Add", {tokens, places}, "embed");

  Value* ones = b.op("ConstantOfShape", {b.seq_by_seq_shape()}, "causal.ones",
                     {{"value", Tensor::from_vector<bool>({1}, {true})}});
  Value* causal = b.op("Trilu", {ones}, "causal", {{"upper", int64_t{0}}});

  for (int64_t layer = 0; layer < s.layers; ++layer) {
    const std::string p = t + "h." + std::to_string(layer) + ".";
    SEQRUN_ASSIGN(Value * x, layer_norm(b, s, h, p + "ln_1", p + "ln_1"));
    SEQRUN_ASSIGN(Value * attn, attention(b, s, x, causal, layer, p));
    h = b.op("Add", {h, attn}, p + "residual.attn");
    SEQRUN_ASSIGN(Value * x2, layer_norm(b, s, h, p + "ln_2", p + "ln_2"));
    SEQRUN_ASSIGN(Value * m, mlp(b, s, config, x2, p));
    h = b.op("Add", {h, m}, p + "residual.mlp");
  }
  SEQRUN_ASSIGN(h, layer_norm(b, s, h, t + "ln_f", "ln_f"));
  Value* head = wte;
  if (s.tied) {
    b.ignore("lm_head.weight");  // transformers overwrites it with wte when tied
  } else {
    SEQRUN_ASSIGN(head, b.weight("lm_head.weight", {s.vocab, s.width}));
  }
  Value* logits = b.linear(h, head, nullptr, "lm_head");
  SEQRUN_TRY(b.check_all_used(fmt::format("a GPT-2 model with {} layers", s.layers)));

  BuiltModel out;
  SEQRUN_ASSIGN(out.graph, b.finish(logits));
  out.metadata["architecture"] = "gpt2";
  out.metadata["vocab_size"] = std::to_string(s.vocab);
  out.metadata["hidden_size"] = std::to_string(s.width);
  out.metadata["num_layers"] = std::to_string(s.layers);
  out.metadata["num_heads"] = std::to_string(s.heads);
  out.metadata["max_position_embeddings"] = std::to_string(s.positions);
  SEQRUN_TRY(add_token_metadata(config, out.metadata));
  return out;
}

}  // namespace seqrun::models::gpt2
