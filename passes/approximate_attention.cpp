// approximate-attention pass (see approximate_attention.h): deterministic orthogonal random features, the
// FAVOR+ feature maps as primitive ops around one constant weight, and the linear-time attention from
// linearize-attention's emitter.
#include "passes/approximate_attention.h"

#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <vector>

#include "ir/infer.h"
#include "passes/linearize_attention.h"
#include "passes/pattern.h"

namespace seqrun::passes {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Standard normal samples from a 64-bit Mersenne Twister by Box-Muller: both are specified exactly, so the
// features are the same with every standard library (std::normal_distribution is not).
class Gaussian {
 public:
  explicit Gaussian(uint64_t seed) : rng_(seed) {}
  double next() {
    const double u1 = (static_cast<double>(rng_() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    const double u2 = static_cast<double>(rng_() >> 11) * 0x1.0p-53;          // [0, 1)
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
  }

 private:
  std::mt19937_64 rng_;
};

// One Attention node the pass can replace.
struct SoftmaxAttention {
  Node* node = nullptr;
  int64_t heads = 0, head_size = 0;
  bool causal = false;
  double scale = 1.0;
};

std::optional<SoftmaxAttention> match_attention(Node* n, ShapeReasoner& shapes) {
  if (n->op() != "Attention" || n->num_outputs() != 1 || n->num_captures() > 0) return std::nullopt;
  for (int i = 3; i < n->num_inputs(); ++i) {
    if (n->input(i) != nullptr) return std::nullopt;  // mask, past, nonpad: not representable here
  }
  if (n->get_float("softcap", 0.0f) != 0.0f) return std::nullopt;
  Value* q = n->input(0);
  Value* k = n->input(1);
  Value* v = n->input(2);
  if (!is_float(q->type().dtype()) || ShapeReasoner::rank(q) != 4 || ShapeReasoner::rank(k) != 4 ||
      ShapeReasoner::rank(v) != 4) {
    return std::nullopt;
  }
  const SymDim heads = shapes.dim(q, 1), d = shapes.dim(q, 3);
  if (!heads.known() || !(shapes.dim(k, 1) == heads) || !(shapes.dim(v, 1) == heads)) return std::nullopt;
  if (!d.is_static() || d.value() <= 0 || !(shapes.dim(k, 3) == d)) return std::nullopt;
  SoftmaxAttention m;
  m.node = n;
  m.head_size = d.value();
  m.causal = n->get_int("is_causal", 0) != 0;
  m.scale = n->has_attr("scale") ? n->get_float("scale") : 1.0 / std::sqrt(static_cast<double>(d.value()));
  if (!(m.scale > 0.0)) return std::nullopt;
  if (m.causal) {  // LinearAttention: static heads, one batch, square scores (no past)
    const SymDim b = shapes.dim(q, 0);
    if (!heads.is_static() || !b.known() || !(shapes.dim(k, 0) == b) || !(shapes.dim(v, 0) == b))
      return std::nullopt;
    const SymDim sq = shapes.dim(q, 2);
    if (!sq.known() || !(shapes.dim(k, 2) == sq)) return std::nullopt;
    m.heads = heads.value();
  }
  return m;
}

void rewrite(Graph& graph, const SoftmaxAttention& m, const FavorOptions& options) {
  Value* q = m.node->input(0);
  Value* k = m.node->input(1);
  Value* v = m.node->input(2);
  Value* y = m.node->output(0);
  const DType dt = y->type().dtype();
  const std::string base = y->name() + "_favor";
  auto emit = [&](const std::string& op, const std::vector<Value*>& inputs,
                  std::map<std::string, Attribute> attrs = {}) {
    Node* n = graph.add_node(op, inputs, 1, std::move(attrs), {graph.unique_name(base + "_" + op)});
    Status st = infer_node_types(*n);  // the pass manager re-infers and verifies after the pass
    (void)st;
    return n->output(0);
  };
  auto axes = [&](const std::vector<int64_t>& a) { return add_i64_constant(graph, base + "_axes", a); };
  auto scalar = [&](double x) {
    return graph.add_constant(graph.unique_name(base + "_c"), Tensor::scalar<double>(x).cast(dt));
  };

  // W = √scale · Ωᵀ [d, M]: x·W are the random projections of √scale·x.
  const int64_t d = m.head_size, features = options.features;
  const std::vector<float> omega = favor_features(features, d, options.seed);
  Tensor w = Tensor::empty(DType::f32, {d, features});
  const double root_scale = std::sqrt(m.scale);
  for (int64_t r = 0; r < d; ++r) {
    for (int64_t f = 0; f < features; ++f)
      w.data<float>()[r * features + f] = static_cast<float>(root_scale * omega[f * d + r]);
  }
  Value* weight = graph.add_constant(graph.unique_name(base + "_features"), w.cast(dt));

  Value* q_proj = emit("MatMul", {q, weight});
  Value* q_max = emit("ReduceMax", {q_proj, axes({-1})}, {{"keepdims", int64_t{1}}});
  Value* phi_q = emit("Exp", {emit("Sub", {q_proj, q_max})});

  Value* k_proj = emit("MatMul", {k, weight});
  Value* k_norm = emit("ReduceSum", {emit("Mul", {k, k}), axes({-1})}, {{"keepdims", int64_t{1}}});
  Value* k_logits = emit("Sub", {k_proj, emit("Mul", {k_norm, scalar(m.scale / 2.0)})});
  Value* k_max = emit("ReduceMax", {k_logits, axes({-2, -1})}, {{"keepdims", int64_t{1}}});
  Value* phi_k = emit("Exp", {emit("Sub", {k_logits, k_max})});
  Value* phi_kt = emit("Transpose", {phi_k}, {{"perm", std::vector<int64_t>{0, 1, 3, 2}}});

  LinearAttentionSpec spec;
  spec.causal = m.causal;
  spec.row_sums = true;
  spec.rank = 4;
  spec.heads = m.heads;
  spec.dtype = dt;
  LinearAttentionForm form = emit_linear_attention(graph, base, phi_q, phi_kt, v, spec);
  take_place_of(graph, y, emit("Div", {form.num, form.den}));
}

}  // namespace

std::vector<float> favor_features(int64_t features, int64_t head_size, uint64_t seed) {
  Gaussian gauss(seed);
  const int64_t d = head_size;
  std::vector<float> omega(features * d);
  std::vector<double> block(d * d);
  for (int64_t row0 = 0; row0 < features; row0 += d) {
    for (double& x : block) x = gauss.next();
    for (int64_t i = 0; i < d; ++i) {  // modified Gram-Schmidt: rows become orthonormal
      double* bi = block.data() + i * d;
      for (int64_t j = 0; j < i; ++j) {
        const double* bj = block.data() + j * d;
        double dot = 0.0;
        for (int64_t c = 0; c < d; ++c) dot += bi[c] * bj[c];
        for (int64_t c = 0; c < d; ++c) bi[c] -= dot * bj[c];
      }
      double norm = 0.0;
      for (int64_t c = 0; c < d; ++c) norm += bi[c] * bi[c];
      norm = std::sqrt(norm);
      for (int64_t c = 0; c < d; ++c) bi[c] /= norm;
    }
    for (int64_t i = 0; i < d && row0 + i < features; ++i) {
      double length = 0.0;  // the norm a Gaussian row would have: chi with d degrees of freedom
      for (int64_t c = 0; c < d; ++c) {
        const double g = gauss.next();
        length += g * g;
      }
      length = std::sqrt(length);
      for (int64_t c = 0; c < d; ++c)
        omega[(row0 + i) * d + c] = static_cast<float>(length * block[i * d + c]);
    }
  }
  return omega;
}

Result<FavorOptions> parse_favor_spec(const std::string& spec) {
  FavorOptions options;
  if (spec == "favor") return options;
  const std::string prefix = "favor:";
  if (spec.rfind(prefix, 0) != 0) {
    return make_error("approximation '{}' is not favor or favor:M (M random features, e.g. favor:256)", spec);
  }
  const std::string count = spec.substr(prefix.size());
  if (count.empty() || count.size() > 7 || count.find_first_not_of("0123456789") != std::string::npos ||
      std::stoll(count) < 1) {
    return make_error("approximation '{}': M must be a positive integer below 10^7 (favor:256)", spec);
  }
  options.features = std::stoll(count);
  return options;
}

std::unique_ptr<Pass> create_approximate_attention_pass(const std::string& spec) {
  Result<FavorOptions> options = parse_favor_spec(spec);
  if (!options) return nullptr;
  return std::make_unique<ApproximateAttentionPass>(*options);
}

Result<bool> ApproximateAttentionPass::run(Graph& graph) {
  ShapeReasoner shapes;
  bool changed = false;
  for (Node* node : graph.nodes()) {
    std::optional<SoftmaxAttention> m = match_attention(node, shapes);
    if (!m) continue;
    rewrite(graph, *m, options_);
    shapes.clear();
    changed = true;
  }
  if (!changed) return false;
  graph.remove_dead_code();
  SEQRUN_TRY(graph.sort_topologically());
  return true;
}

}  // namespace seqrun::passes
