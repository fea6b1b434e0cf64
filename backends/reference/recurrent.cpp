// Reference kernels for ONNX RNN, LSTM and GRU: every direction, sequence_lens, initial states,
// LSTM peepholes and input_forget, GRU linear_before_reset, clip, the activation list with
// alpha/beta, and layouts 0 and 1.
//
// Layout (after reading through the layout-aware index helpers): X[t][b][i], W[d][g*H + j][i],
// R[d][g*H + j][k], B[d] = [Wb (G*H) | Rb (G*H)], states [d][b][j]. One loop per direction, batch
// row and time step, gate pre-activations accumulated in double. Batch rows run their own
// sequence length: the reverse direction starts at t = len - 1, Y is zero past len, and a row with
// len = 0 keeps zero Y_h / Y_c (what ONNX Runtime does). Compute-bound, single-threaded.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>
#include <vector>

#include "backends/reference/kernel.h"

namespace seqrun::reference {
namespace {

enum class Op { kRnn, kGru, kLstm };

// One activation function with its alpha/beta (ONNX's list: Relu, Tanh, Sigmoid, Affine, LeakyRelu,
// ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, Softsign, Softplus).
struct Activation {
  enum Kind {
    kRelu,
    kTanh,
    kSigmoid,
    kAffine,
    kLeakyRelu,
    kThresholdedRelu,
    kScaledTanh,
    kHardSigmoid,
    kElu,
    kSoftsign,
    kSoftplus
  } kind = kTanh;
  double alpha = 0.0, beta = 0.0;

  double operator()(double x) const {
    switch (kind) {
      case kRelu:
        return x > 0 ? x : 0.0;
      case kTanh:
        return std::tanh(x);
      case kSigmoid:
        return 1.0 / (1.0 + std::exp(-x));
      case kAffine:
        return alpha * x + beta;
      case kLeakyRelu:
        return x >= 0 ? x : alpha * x;
      case kThresholdedRelu:
        return x > alpha ? x : 0.0;
      case kScaledTanh:
        return alpha * std::tanh(beta * x);
      case kHardSigmoid:
        return std::max(0.0, std::min(1.0, alpha * x + beta));
      case kElu:
        return x >= 0 ? x : alpha * (std::exp(x) - 1.0);
      case kSoftsign:
        return x / (1.0 + std::fabs(x));
      case kSoftplus:
        return x > 30.0 ? x : std::log1p(std::exp(x));
    }
    return x;
  }
};

struct ActivationInfo {
  const char* name;
  Activation::Kind kind;
  bool takes_alpha, takes_beta;
  double default_alpha, default_beta;
};

constexpr ActivationInfo kActivations[] = {
    {"relu", Activation::kRelu, false, false, 0, 0},
    {"tanh", Activation::kTanh, false, false, 0, 0},
    {"sigmoid", Activation::kSigmoid, false, false, 0, 0},
    {"affine", Activation::kAffine, true, true, 1.0, 0.0},
    {"leakyrelu", Activation::kLeakyRelu, true, false, 0.01, 0},
    {"thresholdedrelu", Activation::kThresholdedRelu, true, false, 1.0, 0},
    {"scaledtanh", Activation::kScaledTanh, true, true, 1.0, 1.0},
    {"hardsigmoid", Activation::kHardSigmoid, true, true, 0.2, 0.5},
    {"elu", Activation::kElu, true, false, 1.0, 0},
    {"softsign", Activation::kSoftsign, false, false, 0, 0},
    {"softplus", Activation::kSoftplus, false, false, 0, 0},
};

// Everything the kernel needs to know about one node, checked against the runtime shapes.
struct RecurrentProblem {
  Op op = Op::kRnn;
  int gates = 1;
  int64_t seq = 0, batch = 0, input = 0, hidden = 0, dirs = 1;
  bool reverse_only = false;  // direction = reverse
  int64_t layout = 0;
  std::vector<Activation> acts;  // activations_per_dir * dirs, direction-major
  int acts_per_dir = 1;
  bool has_clip = false;
  double clip = 0.0;
  bool input_forget = false, linear_before_reset = false;
  std::vector<int64_t> lens;  // per batch row

  // Flat offsets honoring the layout.
  int64_t x_at(int64_t t, int64_t b) const { return (layout == 0 ? t * batch + b : b * seq + t) * input; }
  int64_t state_at(int64_t d, int64_t b) const {
    return (layout == 0 ? d * batch + b : b * dirs + d) * hidden;
  }
  int64_t y_at(int64_t t, int64_t d, int64_t b) const {
    return (layout == 0 ? (t * dirs + d) * batch + b : (b * seq + t) * dirs + d) * hidden;
  }
  double clipped(double v) const { return has_clip ? std::max(-clip, std::min(clip, v)) : v; }
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Status parse_activations(const KernelContext& ctx, RecurrentProblem& p) {
  std::vector<std::string> names;
  if (const Attribute* a = ctx.node.attr("activations"); a != nullptr && a->type() == AttrType::Strings) {
    names = a->strings();
  }
  const size_t per_dir = static_cast<size_t>(p.acts_per_dir);
  if (names.empty()) {
    const char* defaults[3] = {"sigmoid", "tanh", "tanh"};
    if (p.op == Op::kRnn) defaults[0] = "tanh";
    for (int64_t d = 0; d < p.dirs; ++d) names.insert(names.end(), defaults, defaults + per_dir);
  } else if (names.size() == per_dir && p.dirs == 2) {
    names.insert(names.end(), names.begin(), names.end());  // the same functions for both directions
  }
  if (names.size() != per_dir * static_cast<size_t>(p.dirs)) {
    return ctx.error("activations lists {} functions, expected {} ({} per direction)", names.size(),
                     per_dir * p.dirs, per_dir);
  }
  // activation_alpha / activation_beta are consumed in order by the functions that take them.
  const std::vector<float> alphas = ctx.node.get_floats("activation_alpha");
  const std::vector<float> betas = ctx.node.get_floats("activation_beta");
  size_t next_alpha = 0, next_beta = 0;
  for (const std::string& name : names) {
    const std::string l = lower(name);
    const ActivationInfo* info = nullptr;
    for (const ActivationInfo& k : kActivations) {
      if (l == k.name) info = &k;
    }
    if (info == nullptr) return ctx.error("unknown activation '{}'", name);
    Activation act;
    act.kind = info->kind;
    act.alpha = info->default_alpha;
    act.beta = info->default_beta;
    if (info->takes_alpha && next_alpha < alphas.size()) act.alpha = alphas[next_alpha++];
    if (info->takes_beta && next_beta < betas.size()) act.beta = betas[next_beta++];
    p.acts.push_back(act);
  }
  return Status::ok();
}

Status check_shape(const KernelContext& ctx, const Tensor& t, const char* what, const Shape& expected) {
  if (t.dtype() != DType::f32)
    return ctx.error("{} must be a float tensor, got {}", what, dtype_name(t.dtype()));
  if (t.shape() != expected) {
    return ctx.error("{} must be {}, got {}", what, shape_to_string(expected), shape_to_string(t.shape()));
  }
  return Status::ok();
}

Result<RecurrentProblem> read_problem(const KernelContext& ctx, Op op) {
  RecurrentProblem p;
  p.op = op;
  p.gates = op == Op::kLstm ? 4 : op == Op::kGru ? 3 : 1;
  p.acts_per_dir = op == Op::kLstm ? 3 : op == Op::kGru ? 2 : 1;
  for (int i = 0; i < 3; ++i) {
    if (!ctx.has_input(i)) return ctx.error("required input {} is missing", i);
  }
  const std::string direction = ctx.node.get_string("direction", "forward");
  if (direction != "forward" && direction != "reverse" && direction != "bidirectional") {
    return ctx.error("direction '{}' is not forward, reverse or bidirectional", direction);
  }
  p.dirs = direction == "bidirectional" ? 2 : 1;
  p.reverse_only = direction == "reverse";
  p.layout = ctx.node.get_int("layout", 0);
  if (p.layout != 0 && p.layout != 1) return ctx.error("layout must be 0 or 1, got {}", p.layout);
  p.has_clip = ctx.node.has_attr("clip");
  if (p.has_clip) {
    p.clip = ctx.node.get_float("clip");
    if (!(p.clip > 0.0)) return ctx.error("clip must be positive, got {}", p.clip);
  }
  p.input_forget = op == Op::kLstm && ctx.node.get_int("input_forget", 0) != 0;
  p.linear_before_reset = op == Op::kGru && ctx.node.get_int("linear_before_reset", 0) != 0;

  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const Tensor& r = ctx.input(2);
  if (x.dtype() != DType::f32) return ctx.error("X must be a float tensor, got {}", dtype_name(x.dtype()));
  if (x.rank() != 3) return ctx.error("X must be 3-D, got {}", shape_to_string(x.shape()));
  p.seq = x.dim(p.layout == 0 ? 0 : 1);
  p.batch = x.dim(p.layout == 0 ? 1 : 0);
  p.input = x.dim(2);
  if (r.rank() != 3)
    return ctx.error("R must be [num_directions, {} * hidden, hidden], got {}", p.gates,
                     shape_to_string(r.shape()));
  p.hidden = ctx.node.has_attr("hidden_size") ? ctx.node.get_int("hidden_size") : r.dim(2);
  if (p.hidden <= 0) return ctx.error("hidden_size must be positive, got {}", p.hidden);
  const int64_t rows = p.gates * p.hidden;
  SEQRUN_TRY(check_shape(ctx, w, "W", {p.dirs, rows, p.input}));
  SEQRUN_TRY(check_shape(ctx, r, "R", {p.dirs, rows, p.hidden}));
  if (ctx.has_input(3)) SEQRUN_TRY(check_shape(ctx, ctx.input(3), "B", {p.dirs, 2 * rows}));
  const Shape state = p.layout == 0 ? Shape{p.dirs, p.batch, p.hidden} : Shape{p.batch, p.dirs, p.hidden};
  if (ctx.has_input(5)) SEQRUN_TRY(check_shape(ctx, ctx.input(5), "initial_h", state));
  if (op == Op::kLstm) {
    if (ctx.has_input(6)) SEQRUN_TRY(check_shape(ctx, ctx.input(6), "initial_c", state));
    if (ctx.has_input(7)) SEQRUN_TRY(check_shape(ctx, ctx.input(7), "P", {p.dirs, 3 * p.hidden}));
  }
  p.lens.assign(static_cast<size_t>(p.batch), p.seq);
  if (ctx.has_input(4)) {
    const Tensor& lens = ctx.input(4);
    if (lens.dtype() != DType::i32 && lens.dtype() != DType::i64) {
      return ctx.error("sequence_lens must be int32, got {}", dtype_name(lens.dtype()));
    }
    if (lens.shape() != Shape{p.batch}) {
      return ctx.error("sequence_lens must be [{}], got {}", p.batch, shape_to_string(lens.shape()));
    }
    for (int64_t b = 0; b < p.batch; ++b) {
      const int64_t len = lens.get_i64(b);
      if (len < 0 || len > p.seq) {
        return ctx.error("sequence_lens[{}] = {} is outside [0, {}]", b, len, p.seq);
      }
      p.lens[b] = len;
    }
  }
  SEQRUN_TRY(parse_activations(ctx, p));
  return p;
}

// dot(a[0..n), b[0..n)) in double.
template <typename T>
double dot(const float* a, const T* b, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// The inputs every step reads, for one direction.
struct DirectionWeights {
  const float* w;   // [G*H, I]
  const float* r;   // [G*H, H]
  const float* wb;  // [G*H] or null
  const float* rb;  // [G*H] or null
  const float* p;   // [3H] (LSTM i, o, f) or null
  const Activation* f;
  const Activation* g;
  const Activation* h;
};

double bias(const float* b, int64_t i) {
  return b != nullptr ? b[i] : 0.0;
}

// One time step of one batch row. `h` and `c` hold the previous state and receive the new one.
void step(const RecurrentProblem& p, const DirectionWeights& dw, const float* x, std::vector<double>& h,
          std::vector<double>& c) {
  const int64_t H = p.hidden, I = p.input;
  const std::vector<double> h_prev = h;
  // Pre-activations of every gate row from X and H: gx = W x + Wb, gh = R h + Rb.
  const int64_t rows = p.gates * H;
  std::vector<double> gx(rows), gh(rows);
  for (int64_t row = 0; row < rows; ++row) {
    gx[row] = dot(dw.w + row * I, x, I) + bias(dw.wb, row);
    gh[row] = dot(dw.r + row * H, h_prev.data(), H) + bias(dw.rb, row);
  }
  if (p.op == Op::kRnn) {
    for (int64_t j = 0; j < H; ++j) h[j] = (*dw.f)(p.clipped(gx[j] + gh[j]));
    return;
  }
  if (p.op == Op::kGru) {
    // Rows: z [0, H), r [H, 2H), h [2H, 3H).
    std::vector<double> z(H), rg(H);
    for (int64_t j = 0; j < H; ++j) {
      z[j] = (*dw.f)(p.clipped(gx[j] + gh[j]));
      rg[j] = (*dw.f)(p.clipped(gx[H + j] + gh[H + j]));
    }
    std::vector<double> reset_h(H);
    if (!p.linear_before_reset) {
      for (int64_t j = 0; j < H; ++j) reset_h[j] = rg[j] * h_prev[j];
    }
    for (int64_t j = 0; j < H; ++j) {
      const int64_t row = 2 * H + j;
      double pre;
      if (p.linear_before_reset) {
        pre = gx[row] + rg[j] * gh[row];  // r ⊙ (R_h h + Rb_h)
      } else {
        pre = gx[row] + dot(dw.r + row * H, reset_h.data(), H) + bias(dw.rb, row);  // R_h (r ⊙ h) + Rb_h
      }
      const double cand = (*dw.g)(p.clipped(pre));
      h[j] = (1.0 - z[j]) * cand + z[j] * h_prev[j];
    }
    return;
  }
  // LSTM rows: i [0, H), o [H, 2H), f [2H, 3H), c [3H, 4H); peepholes P = [Pi | Po | Pf].
  for (int64_t j = 0; j < H; ++j) {
    const double c_prev = c[j];
    const double pi = dw.p != nullptr ? dw.p[j] : 0.0;
    const double po = dw.p != nullptr ? dw.p[H + j] : 0.0;
    const double pf = dw.p != nullptr ? dw.p[2 * H + j] : 0.0;
    const double i_gate = (*dw.f)(p.clipped(gx[j] + gh[j] + pi * c_prev));
    const double f_gate =
        p.input_forget ? 1.0 - i_gate : (*dw.f)(p.clipped(gx[2 * H + j] + gh[2 * H + j] + pf * c_prev));
    const double cand = (*dw.g)(p.clipped(gx[3 * H + j] + gh[3 * H + j]));
    const double c_new = f_gate * c_prev + i_gate * cand;
    const double o_gate = (*dw.f)(p.clipped(gx[H + j] + gh[H + j] + po * c_new));
    c[j] = c_new;
    h[j] = o_gate * (*dw.h)(p.clipped(c_new));
  }
}

Status recurrent_kernel(KernelContext& ctx, Op op) {
  SEQRUN_ASSIGN(RecurrentProblem p, read_problem(ctx, op));
  const int64_t H = p.hidden, rows = p.gates * H;
  const Shape y_shape = p.layout == 0 ? Shape{p.seq, p.dirs, p.batch, H} : Shape{p.batch, p.seq, p.dirs, H};
  const Shape state_shape = p.layout == 0 ? Shape{p.dirs, p.batch, H} : Shape{p.batch, p.dirs, H};
  if (!checked_num_elements(y_shape, sizeof(float))) {
    return ctx.error("output Y {} is too large", shape_to_string(y_shape));
  }
  Tensor y = Tensor::zeros(DType::f32, y_shape);
  Tensor y_h = Tensor::zeros(DType::f32, state_shape);
  Tensor y_c = Tensor::zeros(DType::f32, state_shape);
  const float* xd = ctx.input(0).data<float>();
  const float* h0 = ctx.has_input(5) ? ctx.input(5).data<float>() : nullptr;
  const float* c0 = op == Op::kLstm && ctx.has_input(6) ? ctx.input(6).data<float>() : nullptr;
  float* yd = y.data<float>();
  for (int64_t d = 0; d < p.dirs; ++d) {
    const bool reverse = p.reverse_only || d == 1;
    DirectionWeights dw{};
    dw.w = ctx.input(1).data<float>() + d * rows * p.input;
    dw.r = ctx.input(2).data<float>() + d * rows * H;
    if (ctx.has_input(3)) {
      dw.wb = ctx.input(3).data<float>() + d * 2 * rows;
      dw.rb = dw.wb + rows;
    }
    if (op == Op::kLstm && ctx.has_input(7)) dw.p = ctx.input(7).data<float>() + d * 3 * H;
    const Activation* acts = p.acts.data() + d * p.acts_per_dir;
    dw.f = &acts[0];
    dw.g = p.acts_per_dir > 1 ? &acts[1] : nullptr;
    dw.h = p.acts_per_dir > 2 ? &acts[2] : nullptr;
    for (int64_t b = 0; b < p.batch; ++b) {
      const int64_t s = p.state_at(d, b);
      std::vector<double> h(H, 0.0), c(H, 0.0);
      for (int64_t j = 0; j < H; ++j) {
        if (h0 != nullptr) h[j] = h0[s + j];
        if (c0 != nullptr) c[j] = c0[s + j];
      }
      const int64_t len = p.lens[b];
      for (int64_t k = 0; k < len; ++k) {
        const int64_t t = reverse ? len - 1 - k : k;
        step(p, dw, xd + p.x_at(t, b), h, c);
        float* out = yd + p.y_at(t, d, b);
        for (int64_t j = 0; j < H; ++j) out[j] = static_cast<float>(h[j]);
      }
      if (len == 0) continue;  // Y_h / Y_c stay zero
      for (int64_t j = 0; j < H; ++j) {
        y_h.data<float>()[s + j] = static_cast<float>(h[j]);
        y_c.data<float>()[s + j] = static_cast<float>(c[j]);
      }
    }
  }
  ctx.outputs = {y, y_h, y_c};
  ctx.outputs.resize(static_cast<size_t>(ctx.node.num_outputs()));
  return Status::ok();
}

}  // namespace

void register_recurrent_kernels(KernelRegistry& r) {
  r.add(
      "RNN", [](KernelContext& ctx) { return recurrent_kernel(ctx, Op::kRnn); }, true);
  r.add(
      "GRU", [](KernelContext& ctx) { return recurrent_kernel(ctx, Op::kGru); }, true);
  r.add(
      "LSTM", [](KernelContext& ctx) { return recurrent_kernel(ctx, Op::kLstm); }, true);
}

}  // namespace seqrun::reference
