// Builds RWKV v4 / v5.1 / v5.2 / v7 graphs from rwkv.cpp files (interface: models/rwkv/rwkv_builder.h).
//
// The converter that wrote rwkv.cpp files stores some parameters transformed: v4 time_decay as
// -exp(w) (a log decay per step, fed to RWKV4WKV as is); v5.x time_decay as exp(-exp(w)) (a decay
// factor: its log becomes LinearAttention's decay) and v5.1 time_first as exp(u) (the bonus itself).
// Weight matrices are [out, in] (Linear's layout). The formulas follow the RWKV papers; the expected
// logits of rwkv.cpp's tiny test models are the arbiter (tests/unit/test_rwkv.cpp).
#include "models/rwkv/rwkv_builder.h"

#include <cmath>
#include <map>
#include <set>
#include <utility>

#include "ir/infer.h"
#include "ir/verify.h"

namespace seqrun::models::rwkv {
namespace {

constexpr float kLayerNormEps = 1e-5f;
constexpr float kGroupNormEpsV5 = 1e-5f;   // rwkv.cpp's group norm on the raw WKV output
constexpr float kGroupNormEpsV7 = 64e-5f;  // RWKV-7: GroupNorm(eps = 64e-5)
constexpr float kL2NormEps = 1e-12f;       // torch.nn.functional.normalize

// Graph construction with the file's tensors: checks shapes, records which tensors were used.
class Builder {
 public:
  Builder(const RwkvFile& file, const RwkvModelInfo& info, Graph& g) : file_(file), info_(info), g_(g) {}

  // The tensor `name` with exactly `shape`.
  Result<Tensor> param(const std::string& name, const Shape& shape) {
    const Tensor* t = file_.find(name);
    if (t == nullptr) return missing(name);
    used_.insert(name);
    if (t->shape() != shape) {
      return make_error("{}: tensor '{}' has shape {}, expected {} for an RWKV v{} model", file_.path, name,
                        shape_to_string(t->shape()), shape_to_string(shape), rwkv_arch_name(info_.arch));
    }
    return *t;
  }
  // The tensor `name` holding `count` elements (any shape of that size, e.g. [C], [1, 1, C]), as [count].
  Result<Tensor> vec(const std::string& name, int64_t count) {
    const Tensor* t = file_.find(name);
    if (t == nullptr) return missing(name);
    used_.insert(name);
    if (t->numel() != count) {
      return make_error("{}: tensor '{}' has shape {}, expected {} elements for an RWKV v{} model",
                        file_.path, name, shape_to_string(t->shape()), count, rwkv_arch_name(info_.arch));
    }
    return t->reshaped({count});
  }
  Result<Value*> weight(const std::string& name, const Shape& shape) {
    SEQRUN_ASSIGN(Tensor t, param(name, shape));
    return g_.add_constant(name, t);
  }
  Result<Value*> vector_weight(const std::string& name, int64_t count) {
    SEQRUN_ASSIGN(Tensor t, vec(name, count));
    return g_.add_constant(name, t);
  }
  Value* constant(const std::string& name, Tensor t) { return g_.add_constant(g_.unique_name(name), t); }
  Value* shape_constant(const std::vector<int64_t>& dims) {
    std::string key = "shape";
    for (int64_t d : dims) key += "_" + (d < 0 ? "m" + std::to_string(-d) : std::to_string(d));
    auto it = shapes_.find(key);
    if (it != shapes_.end()) return it->second;
    Value* v = constant(key, Tensor::from_vector<int64_t>({static_cast<int64_t>(dims.size())}, dims));
    shapes_[key] = v;
    return v;
  }
  // One shared f32 scalar constant per name.
  Value* scalar_constant(const std::string& name, float value) {
    auto it = shapes_.find(name);
    if (it != shapes_.end()) return it->second;
    Value* v = constant(name, Tensor::scalar<float>(value));
    shapes_[name] = v;
    return v;
  }

  // Adds `op` and returns its outputs, named `name` (+ ".1", ".2" ... for later outputs).
  std::vector<Value*> ops(const std::string& op, const std::vector<Value*>& inputs, int num_outputs,
                          const std::string& name, std::map<std::string, Attribute> attrs = {}) {
    std::vector<std::string> names;
    for (int i = 0; i < num_outputs; ++i)
      names.push_back(g_.unique_name(i == 0 ? name : name + "." + std::to_string(i)));
    Node* n = g_.add_node(op, inputs, num_outputs, std::move(attrs), names);
    n->set_name(names[0]);
    return n->outputs();
  }
  Value* op(const std::string& op_name, const std::vector<Value*>& inputs, const std::string& name,
            std::map<std::string, Attribute> attrs = {}) {
    return ops(op_name, inputs, 1, name, std::move(attrs))[0];
  }

  Value* linear(Value* x, Value* w, const std::string& name) { return op("Linear", {x, w}, name); }
  Result<Value*> layer_norm(Value* x, const std::string& prefix, const std::string& name) {
    SEQRUN_ASSIGN(Value * w, vector_weight(prefix + ".weight", info_.n_embed));
    SEQRUN_ASSIGN(Value * b, vector_weight(prefix + ".bias", info_.n_embed));
    return op("LayerNormalization", {x, w, b}, name, {{"axis", int64_t{-1}}, {"epsilon", kLayerNormEps}});
  }
  // GroupNormalization over heads of x [B, T, C]: as [B*T, C] with H groups, then back to x's shape.
  Result<Value*> group_norm(Value* x, const std::string& prefix, float eps, const std::string& name) {
    SEQRUN_ASSIGN(Value * w, vector_weight(prefix + ".weight", info_.n_embed));
    SEQRUN_ASSIGN(Value * b, vector_weight(prefix + ".bias", info_.n_embed));
    Value* rows = op("Reshape", {x, shape_constant({-1, info_.n_embed})}, name + ".rows");
    Value* normed = op("GroupNormalization", {rows, w, b}, name + ".normed",
                       {{"num_groups", info_.head_count}, {"epsilon", eps}});
    Value* shape = op("Shape", {x}, name + ".shape");
    return op("Reshape", {normed, shape}, name);
  }
  // v4/v5 mix with the previous token: x * m + prev * (1 - m).
  Result<Value*> lerp_mix(Value* x, Value* prev, const std::string& mix_name, const std::string& name) {
    SEQRUN_ASSIGN(Tensor m, vec(mix_name, info_.n_embed));
    Tensor one_minus = Tensor::empty(DType::f32, {info_.n_embed});
    for (int64_t i = 0; i < info_.n_embed; ++i) one_minus.data<float>()[i] = 1.0f - m.data<float>()[i];
    Value* mv = g_.add_constant(mix_name, m);
    Value* om = constant(mix_name + ".one_minus", one_minus);
    return op("Add", {op("Mul", {x, mv}, name + ".cur"), op("Mul", {prev, om}, name + ".prev")}, name);
  }
  // v7 mix: x + (prev - x) * m, with diff = prev - x given.
  Value* delta_mix(Value* x, Value* diff, Value* m, const std::string& name) {
    return op("Add", {x, op("Mul", {diff, m}, name + ".delta")}, name);
  }

  // Every tensor of the file must have been used: anything else means a file we do not understand.
  Status check_all_used() const {
    for (const RwkvTensor& t : file_.tensors) {
      if (!used_.count(t.name)) {
        return make_error("{}: unexpected tensor '{}' (not part of an RWKV v{} model with {} layers)",
                          file_.path, t.name, rwkv_arch_name(info_.arch), info_.n_layer);
      }
    }
    return Status::ok();
  }

  Graph& graph() { return g_; }
  const RwkvModelInfo& info() const { return info_; }
  const RwkvFile& file() const { return file_; }

 private:
  Status missing(const std::string& name) const {
    return make_error("{}: missing tensor '{}' (needed by an RWKV v{} model with {} layers)", file_.path,
                      name, rwkv_arch_name(info_.arch), info_.n_layer);
  }
  const RwkvFile& file_;
  const RwkvModelInfo& info_;
  Graph& g_;
  std::set<std::string> used_;
  std::map<std::string, Value*> shapes_;  // shared shape and scalar constants by name
};

struct LayerState {
  Value* att_shift;
  Value* wkv;
  Value* ffn_shift;
};

std::string block(int64_t layer) {
  return "blocks." + std::to_string(layer) + ".";
}

// v4 and v5 channel mixing: r = σ(Wr·xr), k = relu(Wk·xk)², x += r ⊙ (Wv·k).
Result<Value*> channel_mix_v4(Builder& b, Value* x, int64_t layer, LayerState& state) {
  const std::string p = block(layer);
  const int64_t C = b.info().n_embed;
  SEQRUN_ASSIGN(Value * xn, b.layer_norm(x, p + "ln2", p + "ffn.x"));
  auto shifted = b.ops("TokenShift", {xn, state.ffn_shift}, 2, p + "ffn.prev");
  state.ffn_shift = shifted[1];
  SEQRUN_ASSIGN(Value * xk, b.lerp_mix(xn, shifted[0], p + "ffn.time_mix_k", p + "ffn.xk"));
  SEQRUN_ASSIGN(Value * xr, b.lerp_mix(xn, shifted[0], p + "ffn.time_mix_r", p + "ffn.xr"));
  const Tensor* key = b.file().find(p + "ffn.key.weight");
  const int64_t hidden = key != nullptr && key->rank() == 2 ? key->dim(0) : 4 * C;
  SEQRUN_ASSIGN(Value * wk, b.weight(p + "ffn.key.weight", {hidden, C}));
  SEQRUN_ASSIGN(Value * wv, b.weight(p + "ffn.value.weight", {C, hidden}));
  SEQRUN_ASSIGN(Value * wr, b.weight(p + "ffn.receptance.weight", {C, C}));
  Value* r = b.op("Sigmoid", {b.linear(xr, wr, p + "ffn.r.lin")}, p + "ffn.r");
  Value* k = b.op("Relu", {b.linear(xk, wk, p + "ffn.k.lin")}, p + "ffn.k.relu");
  k = b.op("Mul", {k, k}, p + "ffn.k");
  return b.op("Add", {x, b.op("Mul", {r, b.linear(k, wv, p + "ffn.kv")}, p + "ffn.out")}, p + "x.ffn");
}

// v7 channel mixing: k = relu(Wk·(x + (prev - x) ⊙ x_k))², x += Wv·k.
Result<Value*> channel_mix_v7(Builder& b, Value* x, int64_t layer, LayerState& state) {
  const std::string p = block(layer);
  const int64_t C = b.info().n_embed;
  SEQRUN_ASSIGN(Value * xn, b.layer_norm(x, p + "ln2", p + "ffn.x"));
  auto shifted = b.ops("TokenShift", {xn, state.ffn_shift}, 2, p + "ffn.prev");
  state.ffn_shift = shifted[1];
  SEQRUN_ASSIGN(Value * mk, b.vector_weight(p + "ffn.x_k", C));
  Value* diff = b.op("Sub", {shifted[0], xn}, p + "ffn.diff");
  Value* xk = b.delta_mix(xn, diff, mk, p + "ffn.xk");
  const Tensor* key = b.file().find(p + "ffn.key.weight");
  const int64_t hidden = key != nullptr && key->rank() == 2 ? key->dim(0) : 4 * C;
  SEQRUN_ASSIGN(Value * wk, b.weight(p + "ffn.key.weight", {hidden, C}));
  SEQRUN_ASSIGN(Value * wv, b.weight(p + "ffn.value.weight", {C, hidden}));
  Value* k = b.op("Relu", {b.linear(xk, wk, p + "ffn.k.lin")}, p + "ffn.k.relu");
  k = b.op("Mul", {k, k}, p + "ffn.k");
  return b.op("Add", {x, b.linear(k, wv, p + "ffn.out")}, p + "x.ffn");
}

// v4 time mixing: x += Wo·(σ(Wr·xr) ⊙ wkv(Wk·xk, Wv·xv)).
Result<Value*> time_mix_v4(Builder& b, Value* x, int64_t layer, LayerState& state) {
  const std::string p = block(layer);
  const int64_t C = b.info().n_embed;
  SEQRUN_ASSIGN(Value * xn, b.layer_norm(x, p + "ln1", p + "att.x"));
  auto shifted = b.ops("TokenShift", {xn, state.att_shift}, 2, p + "att.prev");
  state.att_shift = shifted[1];
  SEQRUN_ASSIGN(Value * xk, b.lerp_mix(xn, shifted[0], p + "att.time_mix_k", p + "att.xk"));
  SEQRUN_ASSIGN(Value * xv, b.lerp_mix(xn, shifted[0], p + "att.time_mix_v", p + "att.xv"));
  SEQRUN_ASSIGN(Value * xr, b.lerp_mix(xn, shifted[0], p + "att.time_mix_r", p + "att.xr"));
  SEQRUN_ASSIGN(Value * wk, b.weight(p + "att.key.weight", {C, C}));
  SEQRUN_ASSIGN(Value * wv, b.weight(p + "att.value.weight", {C, C}));
  SEQRUN_ASSIGN(Value * wr, b.weight(p + "att.receptance.weight", {C, C}));
  SEQRUN_ASSIGN(Value * wo, b.weight(p + "att.output.weight", {C, C}));
  SEQRUN_ASSIGN(Value * decay, b.vector_weight(p + "att.time_decay", C));
  SEQRUN_ASSIGN(Value * first, b.vector_weight(p + "att.time_first", C));
  Value* r = b.op("Sigmoid", {b.linear(xr, wr, p + "att.r.lin")}, p + "att.r");
  Value* k = b.linear(xk, wk, p + "att.k");
  Value* v = b.linear(xv, wv, p + "att.v");
  auto wkv = b.ops("RWKV4WKV", {k, v, decay, first, state.wkv}, 2, p + "att.wkv");
  state.wkv = wkv[1];
  Value* out = b.linear(b.op("Mul", {r, wkv[0]}, p + "att.rwkv"), wo, p + "att.out");
  return b.op("Add", {x, out}, p + "x.att");
}

// v5.1 / v5.2 time mixing: multi-head matrix-state attention with constant decay and bonus u, then
// GroupNorm over heads (and the SiLU gate in v5.2).
Result<Value*> time_mix_v5(Builder& b, Value* x, int64_t layer, LayerState& state) {
  const std::string p = block(layer);
  const RwkvModelInfo& info = b.info();
  const int64_t C = info.n_embed, H = info.head_count, N = info.head_size;
  const bool v52 = info.arch == RwkvArch::v5_2;
  SEQRUN_ASSIGN(Value * xn, b.layer_norm(x, p + "ln1", p + "att.x"));
  auto shifted = b.ops("TokenShift", {xn, state.att_shift}, 2, p + "att.prev");
  state.att_shift = shifted[1];
  SEQRUN_ASSIGN(Value * xk, b.lerp_mix(xn, shifted[0], p + "att.time_mix_k", p + "att.xk"));
  SEQRUN_ASSIGN(Value * xv, b.lerp_mix(xn, shifted[0], p + "att.time_mix_v", p + "att.xv"));
  SEQRUN_ASSIGN(Value * xr, b.lerp_mix(xn, shifted[0], p + "att.time_mix_r", p + "att.xr"));
  SEQRUN_ASSIGN(Value * wk, b.weight(p + "att.key.weight", {C, C}));
  SEQRUN_ASSIGN(Value * wv, b.weight(p + "att.value.weight", {C, C}));
  SEQRUN_ASSIGN(Value * wr, b.weight(p + "att.receptance.weight", {C, C}));
  SEQRUN_ASSIGN(Value * wo, b.weight(p + "att.output.weight", {C, C}));

  // Decay: stored as the factor exp(-exp(w)) in (0, 1], per head (5.1) or per key channel (5.2);
  // LinearAttention takes its log. The bonus u: per head (5.1, stored as exp(u)) or per channel (5.2).
  const int64_t per = v52 ? C : H;
  SEQRUN_ASSIGN(Tensor decay, b.param(p + "att.time_decay", v52 ? Shape{H, N, 1} : Shape{H, 1, 1}));
  SEQRUN_ASSIGN(Tensor bonus, b.param(p + (v52 ? "att.time_faaaa" : "att.time_first"),
                                      v52 ? Shape{H, N, 1} : Shape{H, 1, 1}));
  Tensor log_decay = Tensor::empty(DType::f32, {1, 1, per});
  Tensor u = Tensor::empty(DType::f32, {C});
  for (int64_t i = 0; i < per; ++i) {
    const float w = decay.data<float>()[i];
    if (!(w >= 0.0f && w <= 1.0f)) {
      return make_error("{}: tensor '{}' element {} is {}, not a decay factor in [0, 1]", b.file().path,
                        p + "att.time_decay", i, w);
    }
    log_decay.data<float>()[i] = static_cast<float>(std::log(static_cast<double>(w)));
  }
  for (int64_t c = 0; c < C; ++c) u.data<float>()[c] = bonus.data<float>()[v52 ? c : c / N];
  Value* decay_value = b.constant(p + "att.log_decay", log_decay);
  Value* u_value = b.constant(p + "att.bonus", u);

  Value* r = b.linear(xr, wr, p + "att.r");
  Value* k = b.linear(xk, wk, p + "att.k");
  Value* v = b.linear(xv, wv, p + "att.v");
  auto attn = b.ops("LinearAttention", {r, k, v, state.wkv, decay_value, nullptr, u_value}, 2, p + "att.wkv",
                    {{"q_num_heads", H}, {"kv_num_heads", H}, {"update_rule", "gated"}, {"scale", 1.0f}});
  state.wkv = attn[1];
  SEQRUN_ASSIGN(Value * out, b.group_norm(attn[0], p + "att.ln_x", kGroupNormEpsV5, p + "att.ln_x"));
  if (v52) {
    SEQRUN_ASSIGN(Value * xg, b.lerp_mix(xn, shifted[0], p + "att.time_mix_g", p + "att.xg"));
    SEQRUN_ASSIGN(Value * wg, b.weight(p + "att.gate.weight", {C, C}));
    Value* gate = b.op("Silu", {b.linear(xg, wg, p + "att.g.lin")}, p + "att.g");
    out = b.op("Mul", {out, gate}, p + "att.gated");
  }
  return b.op("Add", {x, b.linear(out, wo, p + "att.out")}, p + "x.att");
}

// Loads a LoRA pair (down [rank, C], up [C, rank]) and returns up·(act(down·x)) (act may be empty).
Result<Value*> lora(Builder& b, Value* x, const std::string& down, const std::string& up,
                    const std::string& act, const std::string& name) {
  const int64_t C = b.info().n_embed;
  const Tensor* d = b.file().find(down);
  const int64_t rank = d != nullptr && d->rank() == 2 ? d->dim(0) : 1;
  SEQRUN_ASSIGN(Value * wd, b.weight(down, {rank, C}));
  SEQRUN_ASSIGN(Value * wu, b.weight(up, {C, rank}));
  Value* h = b.linear(x, wd, name + ".down");
  if (!act.empty()) h = b.op(act, {h}, name + "." + act);
  return b.linear(h, wu, name);
}

// v7 time mixing (RWKV-7 "Goose"): S_t = S_{t-1}(diag(w_t) + a_tᵀ b_t) + v_tᵀ k_t with a = -κ̂,
// b = κ̂ ⊙ a_lr, then GroupNorm, the bonus (Σ_head r ⊙ k ⊙ r_k) v, the output gate, and the value
// residual: v mixes towards layer 0's v (`v_first`).
Result<Value*> time_mix_v7(Builder& b, Value* x, int64_t layer, LayerState& state, Value*& v_first) {
  const std::string p = block(layer);
  const RwkvModelInfo& info = b.info();
  const int64_t C = info.n_embed, H = info.head_count, N = info.head_size;
  SEQRUN_ASSIGN(Value * xn, b.layer_norm(x, p + "ln1", p + "att.x"));
  auto shifted = b.ops("TokenShift", {xn, state.att_shift}, 2, p + "att.prev");
  state.att_shift = shifted[1];
  Value* diff = b.op("Sub", {shifted[0], xn}, p + "att.diff");
  SEQRUN_ASSIGN(Tensor mixes, b.param(p + "att.x_rwkvag", {6, 1, C}));
  const char* mix_names[6] = {"r", "w", "k", "v", "a", "g"};
  Value* mixed[6];
  for (int i = 0; i < 6; ++i) {
    Tensor m = Tensor::empty(DType::f32, {C});
    for (int64_t c = 0; c < C; ++c) m.data<float>()[c] = mixes.data<float>()[i * C + c];
    Value* mv = b.constant(p + "att.x_" + mix_names[i], m);
    mixed[i] = b.delta_mix(xn, diff, mv, p + "att.x" + mix_names[i]);
  }
  SEQRUN_ASSIGN(Value * wr, b.weight(p + "att.receptance.weight", {C, C}));
  SEQRUN_ASSIGN(Value * wk, b.weight(p + "att.key.weight", {C, C}));
  SEQRUN_ASSIGN(Value * wv, b.weight(p + "att.value.weight", {C, C}));
  SEQRUN_ASSIGN(Value * wo, b.weight(p + "att.output.weight", {C, C}));
  SEQRUN_ASSIGN(Value * w0, b.vector_weight(p + "att.w0", C));
  SEQRUN_ASSIGN(Value * a0, b.vector_weight(p + "att.a0", C));
  SEQRUN_ASSIGN(Value * k_k, b.vector_weight(p + "att.k_k", C));
  SEQRUN_ASSIGN(Value * k_a, b.vector_weight(p + "att.k_a", C));
  SEQRUN_ASSIGN(Tensor r_k, b.param(p + "att.r_k", {H, N}));
  Value* r_k_value = b.constant(p + "att.r_k", r_k.reshaped({C}));

  Value* r = b.linear(mixed[0], wr, p + "att.r");
  SEQRUN_ASSIGN(Value * w_lora, lora(b, mixed[1], p + "att.w1", p + "att.w2", "Tanh", p + "att.w_lora"));
  Value* k = b.linear(mixed[2], wk, p + "att.k.lin");
  Value* v = b.linear(mixed[3], wv, p + "att.v.lin");
  SEQRUN_ASSIGN(Value * a_lora, lora(b, mixed[4], p + "att.a1", p + "att.a2", "", p + "att.a_lora"));
  Value* a = b.op("Sigmoid", {b.op("Add", {a0, a_lora}, p + "att.a.pre")}, p + "att.a");
  SEQRUN_ASSIGN(Value * gate, lora(b, mixed[5], p + "att.g1", p + "att.g2", "Sigmoid", p + "att.g"));

  // κ̂: k ⊙ k_k normalized per head (L2, eps 1e-12).
  Value* heads_shape = b.shape_constant({0, 0, H, N});
  Value* packed_shape = b.shape_constant({0, 0, C});
  Value* last_axis = b.shape_constant({-1});
  Value* kk = b.op("Reshape", {b.op("Mul", {k, k_k}, p + "att.kk.raw"), heads_shape}, p + "att.kk.heads");
  Value* norm = b.op("ReduceL2", {kk, last_axis}, p + "att.kk.norm", {{"keepdims", int64_t{1}}});
  norm = b.op("Max", {norm, b.scalar_constant("l2_eps", kL2NormEps)}, p + "att.kk.norm_eps");
  kk = b.op("Reshape", {b.op("Div", {kk, norm}, p + "att.kk.unit"), packed_shape}, p + "att.kk");
  // k = k ⊙ (1 + (a - 1) ⊙ k_a)
  Value* one = b.scalar_constant("one", 1.0f);
  Value* k_scale =
      b.op("Add", {one, b.op("Mul", {b.op("Sub", {a, one}, p + "att.a_minus_1"), k_a}, p + "att.k_a_mix")},
           p + "att.k_scale");
  k = b.op("Mul", {k, k_scale}, p + "att.k");
  // Value residual: v += (v_first - v) ⊙ σ(v0 + v2·(v1·xv)) from layer 1 on.
  if (layer == 0) {
    v_first = v;
  } else {
    SEQRUN_ASSIGN(Value * v0, b.vector_weight(p + "att.v0", C));
    SEQRUN_ASSIGN(Value * v_lora, lora(b, mixed[3], p + "att.v1", p + "att.v2", "", p + "att.v_lora"));
    Value* v_gate = b.op("Sigmoid", {b.op("Add", {v0, v_lora}, p + "att.v_gate.pre")}, p + "att.v_gate");
    Value* towards = b.op("Mul", {b.op("Sub", {v_first, v}, p + "att.v_diff"), v_gate}, p + "att.v_mix");
    v = b.op("Add", {v, towards}, p + "att.v");
  }
  // Log decay: w = exp(-e^{-1/2} σ(w0 + lora)), so log w = -e^{-1/2} σ(w0 + lora).
  Value* neg_rate = b.scalar_constant("v7_log_decay_scale", static_cast<float>(-std::exp(-0.5)));
  Value* log_decay =
      b.op("Mul", {b.op("Sigmoid", {b.op("Add", {w0, w_lora}, p + "att.w.pre")}, p + "att.w.sig"), neg_rate},
           p + "att.log_decay");
  Value* delta_a = b.op("Neg", {kk}, p + "att.delta_a");
  Value* delta_b = b.op("Mul", {kk, a}, p + "att.delta_b");
  auto attn =
      b.ops("LinearAttention", {r, k, v, state.wkv, log_decay, nullptr, nullptr, delta_a, delta_b}, 2,
            p + "att.wkv",
            {{"q_num_heads", H}, {"kv_num_heads", H}, {"update_rule", "generalized_delta"}, {"scale", 1.0f}});
  state.wkv = attn[1];
  SEQRUN_ASSIGN(Value * out, b.group_norm(attn[0], p + "att.ln_x", kGroupNormEpsV7, p + "att.ln_x"));
  // Bonus: per head (Σ r ⊙ k ⊙ r_k) v.
  Value* rk = b.op("Reshape",
                   {b.op("Mul", {b.op("Mul", {r, k}, p + "att.rk"), r_k_value}, p + "att.rk_w"), heads_shape},
                   p + "att.rk.heads");
  Value* rk_sum = b.op("ReduceSum", {rk, last_axis}, p + "att.rk.sum", {{"keepdims", int64_t{1}}});
  Value* v_heads = b.op("Reshape", {v, heads_shape}, p + "att.v.heads");
  Value* bonus =
      b.op("Reshape", {b.op("Mul", {rk_sum, v_heads}, p + "att.bonus.heads"), packed_shape}, p + "att.bonus");
  out = b.op("Add", {out, bonus}, p + "att.with_bonus");
  out = b.op("Mul", {out, gate}, p + "att.gated");
  return b.op("Add", {x, b.linear(out, wo, p + "att.out")}, p + "x.att");
}

}  // namespace

const char* rwkv_arch_name(RwkvArch arch) {
  switch (arch) {
    case RwkvArch::v4:
      return "4";
    case RwkvArch::v5_1:
      return "5.1";
    case RwkvArch::v5_2:
      return "5.2";
    case RwkvArch::v7:
      return "7";
  }
  return "?";
}

Result<RwkvModelInfo> detect_rwkv_model(const RwkvFile& file) {
  RwkvModelInfo info;
  info.n_vocab = file.header.n_vocab;
  info.n_embed = file.header.n_embed;
  info.n_layer = file.header.n_layer;
  auto has = [&](const char* name) { return file.find(name) != nullptr; };
  if (has("blocks.0.att.time_maa_x")) {
    return make_error("{}: RWKV v6 files are not supported yet (v4, v5.1, v5.2 and v7 are)", file.path);
  }
  if (has("blocks.0.att.x_rwkvag")) {
    info.arch = RwkvArch::v7;
    const Tensor* r_k = file.find("blocks.0.att.r_k");
    if (r_k == nullptr || r_k->rank() != 2) {
      return make_error(
          "{}: tensor 'blocks.0.att.r_k' must exist and be [heads, head_size] in an RWKV v7 file", file.path);
    }
    info.head_count = r_k->dim(0);
    info.head_size = r_k->dim(1);
  } else if (has("blocks.0.att.ln_x.weight")) {
    info.arch = has("blocks.0.att.gate.weight") ? RwkvArch::v5_2 : RwkvArch::v5_1;
    const Tensor* decay = file.find("blocks.0.att.time_decay");
    if (decay == nullptr || decay->rank() != 3 || decay->dim(0) < 1) {
      return make_error(
          "{}: tensor 'blocks.0.att.time_decay' must exist and be [heads, ..] in an RWKV v5 file", file.path);
    }
    info.head_count = decay->dim(0);
    if (info.n_embed % info.head_count != 0) {
      return make_error("{}: n_embed {} is not a multiple of the {} heads of 'blocks.0.att.time_decay'",
                        file.path, info.n_embed, info.head_count);
    }
    info.head_size = info.n_embed / info.head_count;
  } else {
    info.arch = RwkvArch::v4;
  }
  if (info.arch == RwkvArch::v7 && info.head_count * info.head_size != info.n_embed) {
    return make_error("{}: tensor 'blocks.0.att.r_k' is [{}, {}], which does not cover n_embed {}", file.path,
                      info.head_count, info.head_size, info.n_embed);
  }
  return info;
}

std::vector<Tensor> rwkv_initial_states(const RwkvModelInfo& info, int64_t batch) {
  std::vector<Tensor> states;
  const int64_t C = info.n_embed;
  for (int64_t i = 0; i < info.n_layer; ++i) {
    states.push_back(Tensor::zeros(DType::f32, {batch, C}));
    if (info.arch == RwkvArch::v4) {
      states.push_back(Tensor::zeros(DType::f32, {batch, 3, C}));
    } else {
      states.push_back(Tensor::zeros(DType::f32, {batch, info.head_count, info.head_size, info.head_size}));
    }
    states.push_back(Tensor::zeros(DType::f32, {batch, C}));
  }
  return states;
}

Result<RwkvGraph> build_rwkv_graph(const RwkvFile& file) {
  SEQRUN_ASSIGN(RwkvModelInfo info, detect_rwkv_model(file));
  auto graph = std::make_unique<Graph>("rwkv" + std::string(rwkv_arch_name(info.arch)));
  Builder b(file, info, *graph);
  const int64_t C = info.n_embed, V = info.n_vocab;
  const Dim batch = Dim::symbol("batch"), seq = Dim::symbol("seq");

  Value* tokens = graph->add_input("tokens", TensorType(DType::i64, {batch, seq}));
  std::vector<LayerState> states;
  for (int64_t i = 0; i < info.n_layer; ++i) {
    const std::string s = "state." + std::to_string(i) + ".";
    LayerState st;
    st.att_shift = graph->add_input(s + "att_shift", TensorType(DType::f32, {batch, Dim(C)}));
    if (info.arch == RwkvArch::v4) {
      st.wkv = graph->add_input(s + "wkv", TensorType(DType::f32, {batch, Dim(3), Dim(C)}));
    } else {
      st.wkv = graph->add_input(
          s + "wkv",
          TensorType(DType::f32, {batch, Dim(info.head_count), Dim(info.head_size), Dim(info.head_size)}));
    }
    st.ffn_shift = graph->add_input(s + "ffn_shift", TensorType(DType::f32, {batch, Dim(C)}));
    states.push_back(st);
  }

  SEQRUN_ASSIGN(Value * emb, b.weight("emb.weight", {V, C}));
  Value* x = b.op("Gather", {emb, tokens}, "emb", {{"axis", int64_t{0}}});
  SEQRUN_ASSIGN(x, b.layer_norm(x, "blocks.0.ln0", "x0"));
  Value* v_first = nullptr;
  for (int64_t i = 0; i < info.n_layer; ++i) {
    LayerState& st = states[i];
    switch (info.arch) {
      case RwkvArch::v4: {
        SEQRUN_ASSIGN(x, time_mix_v4(b, x, i, st));
        SEQRUN_ASSIGN(x, channel_mix_v4(b, x, i, st));
        break;
      }
      case RwkvArch::v5_1:
      case RwkvArch::v5_2: {
        SEQRUN_ASSIGN(x, time_mix_v5(b, x, i, st));
        SEQRUN_ASSIGN(x, channel_mix_v4(b, x, i, st));
        break;
      }
      case RwkvArch::v7: {
        SEQRUN_ASSIGN(x, time_mix_v7(b, x, i, st, v_first));
        SEQRUN_ASSIGN(x, channel_mix_v7(b, x, i, st));
        break;
      }
    }
  }
  SEQRUN_ASSIGN(x, b.layer_norm(x, "ln_out", "x.out"));
  SEQRUN_ASSIGN(Value * head, b.weight("head.weight", {V, C}));
  Value* logits = b.linear(x, head, "logits");
  SEQRUN_TRY(b.check_all_used());

  std::vector<Value*> outputs = {logits};
  for (int64_t i = 0; i < info.n_layer; ++i) {
    const std::string s = "new_state." + std::to_string(i) + ".";
    graph->rename_value(states[i].att_shift, s + "att_shift");
    graph->rename_value(states[i].wkv, s + "wkv");
    graph->rename_value(states[i].ffn_shift, s + "ffn_shift");
    outputs.push_back(states[i].att_shift);
    outputs.push_back(states[i].wkv);
    outputs.push_back(states[i].ffn_shift);
  }
  graph->set_outputs(outputs);
  SEQRUN_TRY(infer_graph_types(*graph).with_context(file.path));
  SEQRUN_TRY(verify_graph(*graph).with_context(file.path));
  return RwkvGraph{std::move(graph), info};
}

}  // namespace seqrun::models::rwkv
