// The op-test table, sequence mixing and control flow: Attention (4-D, packed GQA, causal, masks, KV cache,
// softcap, padding), FlexAttention, LinearAttention (every update rule; long sequences), CachedAttention,
// CausalConvWithState, RotaryEmbedding, SwiGLU, TokenShift, RWKV4WKV, LinearRecurrence, MixedChunkAttention,
// Scan, Loop and If.
#include <memory>

#include "ir/graph.h"
#include "tools/optest/optest.h"

namespace seqrun::optest {

namespace {

using Args = std::vector<backends::TensorArg>;

// QK^T + PV: 2 * T * (q elements + output elements), T = the key length (plus a past cache).
double attention_flops(const Args& in, const Args& out) {
  const bool packed = in[0].rank() == 3;
  int64_t total = packed ? in[1].shape[1] : in[1].shape[2];
  if (in.size() > 4 && in[4].dtype != DType::undefined) total += in[4].shape[2];
  return 2.0 * static_cast<double>(total) * static_cast<double>(in[0].numel() + out[0].numel());
}

TensorType f32_type(const Shape& shape) {
  return TensorType::from_shape(DType::f32, shape);
}

void add_attention_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t b = pick(rng, 1, 2), h = 2 * pick(rng, 1, 2), s = pick(rng, 1, 24), p = pick(rng, 1, 16),
                d = 8 * pick(rng, 1, 4);
  auto attn = [&](std::vector<InputSpec> inputs) -> Case& {
    return add_case(cases, "Attention", std::move(inputs)).cost_flops(attention_flops);
  };
  attn({f32({b, h, s, d}), f32({b, h, s + 3, d}), f32({b, h, s + 3, d + 8})});
  // ChunkedAttention: GQA with keys longer than queries and blocks that do not divide the lengths; causal
  // with a sliding window.
  add_case(cases, "ChunkedAttention",
           {f32({b, h, s, d}), f32({b, h / 2, s + 3, d}), f32({b, h / 2, s + 3, d})})
      .attr("block_q", 4)
      .attr("block_k", 8)
      .cost_flops(attention_flops);
  add_case(cases, "ChunkedAttention", {f32({b, h, s, d}), f32({b, h, s, d}), f32({b, h, s, d})})
      .attr("is_causal", 1)
      .attr("window", 3)
      .attr("block_q", 4)
      .attr("block_k", 4)
      .cost_flops(attention_flops)
      .with_note("causal window");
  attn({f32({b, h, s, d}), f32({b, h, s, d}), f32({b, h, s, d})}).attr("is_causal", 1).with_note("causal");
  attn({f32({b, s, h * d}), f32({b, s, (h / 2) * d}), f32({b, s, (h / 2) * d})})
      .attr("q_num_heads", h)
      .attr("kv_num_heads", h / 2)
      .attr("is_causal", 1)
      .with_note("packed GQA causal");
  attn({f32({b, h, s, d}), f32({b, h, s, d}), f32({b, h, s, d}), f32({s, s}, uniform(-2, 0))})
      .with_note("float mask");
  attn(
      {f32({b, h, s, d}), f32({b, h, s, d}), f32({b, h, s, d}), in(DType::boolean, {b, 1, s, s}, bools(0.8))})
      .with_note("bool mask");
  attn({f32({b, h, 1, d}), f32({b, h / 2, 1, d}), f32({b, h / 2, 1, d}), absent(), f32({b, h / 2, p, d}),
        f32({b, h / 2, p, d})})
      .attr("is_causal", 1)
      .outputs(4)
      .with_note("decode with KV cache");
  attn({f32({b, h, s, d}), f32({b, h, s, d}), f32({b, h, s, d}), absent(), f32({b, h, p, d}),
        f32({b, h, p, d})})
      .attr("is_causal", 1)
      .outputs(3)
      .with_note("prefill after cache");
  attn({f32({b, h, s, d}, uniform(-3, 3)), f32({b, h, s, d}, uniform(-3, 3)), f32({b, h, s, d})})
      .attr("softcap", 5.0f)
      .attr("scale", 0.3f)
      .with_note("softcap scale");
  attn({f32({b, h, s, d}), f32({b, h, s, d}), f32({b, h, s, d}), absent(), absent(), absent(),
        in(DType::i64, {b}, ints(1, s))})
      .with_note("nonpad_kv_seqlen");
  attn({f32({1, 12, 512, 64}), f32({1, 12, 512, 64}), f32({1, 12, 512, 64})})
      .attr("is_causal", 1)
      .perf()
      .with_note("causal prefill");
  attn({f32({1, 32, 1, 128}), f32({1, 8, 1, 128}), f32({1, 8, 1, 128}), absent(), f32({1, 8, 2047, 128}),
        f32({1, 8, 2047, 128})})
      .outputs(3)
      .perf()
      .with_note("GQA decode, 2k cache");

  // FlexAttention: score_mod halves every score (a body graph run on the whole score tensor).
  auto halve = std::make_shared<Graph>("score_mod");
  Value* scores = halve->add_input("scores", f32_type({b, h, s, s + 2}));
  Value* half = halve->add_constant("half", Tensor::scalar<float>(0.5f));
  halve->set_outputs({halve->add_node("Mul", {scores, half}, 1)->output(0)});
  add_case(cases, "FlexAttention", {f32({b, h, s, d}), f32({b, h, s + 2, d}), f32({b, h, s + 2, d})})
      .cost_flops(attention_flops);
  add_case(cases, "FlexAttention", {f32({b, h, s, d}), f32({b, h / 2, s + 2, d}), f32({b, h / 2, s + 2, d})})
      .attr("score_mod", Attribute(halve))
      .cost_flops(attention_flops)
      .with_note("score_mod");
}

void add_linear_attention_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t b = pick(rng, 1, 2), t = pick(rng, 1, 40), hkv = pick(rng, 1, 2), dk = 8 * pick(rng, 1, 2),
                dv = 8 * pick(rng, 1, 2);
  const int64_t hq = 2 * hkv;
  // Small keys keep the delta rule contractive (beta * |k|^2 < 2).
  auto la = [&](const char* rule, bool decay_per_key, bool with_state, int64_t tt) -> Case& {
    std::vector<InputSpec> inputs = {f32({b, tt, hq * dk}), f32({b, tt, hkv * dk}, uniform(-0.25, 0.25)),
                                     f32({b, tt, hkv * dv})};
    inputs.push_back(with_state ? f32({b, hkv, dk, dv}) : absent());
    const std::string r = rule;
    const bool gated = r == "gated" || r == "gated_delta", delta = r == "delta" || r == "gated_delta";
    inputs.push_back(gated ? f32({b, tt, decay_per_key ? hkv * dk : hkv}, uniform(-1.0, -0.01)) : absent());
    if (delta) inputs.push_back(f32({b, tt, hkv}, uniform(0.05, 1.0)));
    const double flops = 2.0 * static_cast<double>(b * tt) * static_cast<double>(dk * dv) *
                         static_cast<double>(hq + (delta ? 3 : 1) * hkv);
    return add_case(cases, "LinearAttention", std::move(inputs))
        .attr("q_num_heads", hq)
        .attr("kv_num_heads", hkv)
        .attr("update_rule", rule)
        .outputs(2)
        .cost_flops([flops](const Args&, const Args&) { return flops; })
        .with_note(rule);
  };
  la("linear", false, false, t);
  la("linear", false, true, t).with_note("linear, past state");
  la("gated", true, true, t).with_note("gated per key channel");
  la("gated", false, false, t).with_note("gated per head");
  la("delta", false, true, t);
  la("gated_delta", false, true, t);
  la("gated_delta", true, false, 1).with_note("gated_delta decode");
  add_case(cases, "LinearAttention", {f32({1, 8, 32}), f32({1, 8, 32}), f32({1, 8, 32})})
      .attr("q_num_heads", 2)
      .attr("kv_num_heads", 2)
      .attr("update_rule", "linear")
      .attr("scale", 0.5f)
      .with_note("one output, scale");
  add_case(cases, "LinearAttention",
           {f32({1, 2048, 512}), f32({1, 2048, 512}, uniform(-0.1, 0.1)), f32({1, 2048, 512}), absent(),
            f32({1, 2048, 8}, uniform(-1.0, -0.01)), f32({1, 2048, 8}, uniform(0.05, 1.0))})
      .attr("q_num_heads", 8)
      .attr("kv_num_heads", 8)
      .outputs(2)
      .perf()
      .with_note("gated_delta prefill");
}

// Long sequences where the CUDA backend switches to its chunkwise kernel (rules linear and gated per head,
// T >= 128: chunks of 64, a partial last chunk).
void add_chunked_linear_attention_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t t = 128 + pick(rng, 0, 100), dk = 16 * pick(rng, 1, 4), dv = 16 * pick(rng, 1, 5);
  add_case(cases, "LinearAttention",
           {f32({2, t, 4 * dk}), f32({2, t, 2 * dk}, uniform(-0.25, 0.25)), f32({2, t, 2 * dv}),
            f32({2, 2, dk, dv})})
      .attr("q_num_heads", 4)
      .attr("kv_num_heads", 2)
      .attr("update_rule", "linear")
      .outputs(2)
      .with_note("linear, long (chunkwise on CUDA)");
  add_case(cases, "LinearAttention",
           {f32({1, t, 2 * dk}), f32({1, t, 2 * dk}, uniform(-0.25, 0.25)), f32({1, t, 2 * dv}),
            f32({1, 2, dk, dv}), f32({1, t, 2}, uniform(-0.5, -0.01))})
      .attr("q_num_heads", 2)
      .attr("kv_num_heads", 2)
      .attr("update_rule", "gated")
      .outputs(2)
      .with_note("gated per head, long (chunkwise on CUDA)");
  add_case(cases, "LinearAttention",
           {in(DType::bf16, {1, 512, 128}), in(DType::bf16, {1, 512, 128}, uniform(-0.25, 0.25)),
            in(DType::bf16, {1, 512, 128}), absent(), in(DType::bf16, {1, 512, 2}, uniform(-0.5, -0.01))})
      .attr("q_num_heads", 2)
      .attr("kv_num_heads", 2)
      .attr("update_rule", "gated")
      .with_note("gated per head bf16, long");
  const double flops = 2.0 * 8192 * 1024 * 64 * 2;
  add_case(cases, "LinearAttention",
           {f32({1, 8192, 1024}), f32({1, 8192, 1024}, uniform(-0.1, 0.1)), f32({1, 8192, 1024}), absent(),
            f32({1, 8192, 16}, uniform(-0.5, -0.01))})
      .attr("q_num_heads", 16)
      .attr("kv_num_heads", 16)
      .attr("update_rule", "gated")
      .cost_flops([flops](const Args&, const Args&) { return flops; })
      .perf()
      .with_note("gated per head prefill, 16 x 64");
}

// CachedAttention: decode steps (T = 1) over a partly filled cache, a multi-token step with window and
// softcap, a bf16 step; perf: one Llama-8B-shaped decode step over a 4k cache (memory-bound: GB/s).
void add_cached_attention_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t b = pick(rng, 1, 2), hkv = pick(rng, 1, 2), d = 8 * pick(rng, 1, 4), cap = pick(rng, 16, 80);
  const int64_t hq = 2 * hkv, p = pick(rng, 0, cap - 1);
  add_case(cases, "CachedAttention",
           {f32({b, hq, 1, d}), f32({b, hkv, 1, d}), f32({b, hkv, 1, d}), f32({b, hkv, cap, d}),
            f32({b, hkv, cap, d}), const_i64({p})})
      .outputs(3)
      .with_note("decode");
  const int64_t t = pick(rng, 2, 6), p2 = pick(rng, 0, cap - t);
  add_case(cases, "CachedAttention",
           {f32({b, hq, t, d}), f32({b, hkv, t, d}), f32({b, hkv, t, d + 8}), f32({b, hkv, cap, d}),
            f32({b, hkv, cap, d + 8}), const_i64({p2}, true)})
      .attr("window", int64_t{3})
      .attr("softcap", 1.5f)
      .outputs(3)
      .with_note("multi-token, window, softcap, Dv != Dk");
  add_case(cases, "CachedAttention",
           {in(DType::bf16, {1, 8, 1, 64}), in(DType::bf16, {1, 2, 1, 64}), in(DType::bf16, {1, 2, 1, 64}),
            in(DType::bf16, {1, 2, 600, 64}), in(DType::bf16, {1, 2, 600, 64}), const_i64({555})})
      .outputs(3)
      .with_note("decode bf16, long cache");
  add_case(
      cases, "CachedAttention",
      {in(DType::bf16, {1, 32, 1, 128}), in(DType::bf16, {1, 8, 1, 128}), in(DType::bf16, {1, 8, 1, 128}),
       in(DType::bf16, {1, 8, 4096, 128}), in(DType::bf16, {1, 8, 4096, 128}), const_i64({4095})})
      .outputs(3)
      .perf()
      .with_note("decode bf16, 4k cache (copies the cache: not in place)");
}

void add_scan_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t b = pick(rng, 1, 3), c = pick(rng, 1, 20), l = pick(rng, 1, 30), k = pick(rng, 2, 4);
  add_case(cases, "CausalConvWithState",
           {f32({b, c, l}), weight(DType::f32, {c, 1, k}), weight(DType::f32, {c}), f32({b, c, k - 1})})
      .outputs(2)
      .with_note("state, bias");
  add_case(cases, "CausalConvWithState", {f32({b, c, l}), weight(DType::f32, {c, 1, k})})
      .attr("activation", "silu")
      .with_note("silu");
  add_case(cases, "CausalConvWithState", {f32({4, 1024, 2048}), weight(DType::f32, {1024, 1, 4})})
      .attr("activation", "silu")
      .perf();

  const int64_t s = pick(rng, 1, 16), h = pick(rng, 1, 4), d = 2 * pick(rng, 2, 16);
  add_case(cases, "RotaryEmbedding",
           {f32({b, h, s, d}), weight(DType::f32, {64, d / 2}), weight(DType::f32, {64, d / 2}),
            in(DType::i64, {b, s}, ints(0, 63))});
  add_case(cases, "RotaryEmbedding", {f32({b, s, h * d}), f32({b, s, d / 2}), f32({b, s, d / 2})})
      .attr("num_heads", h)
      .attr("interleaved", 1)
      .with_note("packed interleaved");
  add_case(cases, "RotaryEmbedding",
           {f32({b, h, s, d}), weight(DType::f32, {32, d / 4}), weight(DType::f32, {32, d / 4}),
            in(DType::i64, {b, s}, ints(0, 31))})
      .attr("rotary_embedding_dim", (d / 4) * 2)
      .with_note("partial");

  add_case(cases, "SwiGLU", {f32({b, s, 2 * d}, uniform(-4, 4)), f32({b, s, 2 * d})});
  add_case(cases, "SwiGLU", {f32({b, s, d}, uniform(-4, 4)), f32({b, s, d})}).attr("alpha", 1.702f);
  add_case(cases, "SwiGLU", {f32({1024, 4096}, uniform(-4, 4)), f32({1024, 4096})}).perf();

  // Mamba selective scan: u, delta, A (negative), B, C, D, z, delta_bias, h0 -> y and the final state;
  // the L = 1 step form; and a Mamba-130m-layer-sized perf case (D = 1536, N = 16, L = 2048).
  const int64_t n_state = pick(rng, 1, 20);
  add_case(cases, "SelectiveScan",
           {f32({b, c, l}), f32({b, c, l}, uniform(-3, 1)),
            weight(DType::f32, {c, n_state}, uniform(-2, -0.1)), f32({b, n_state, l}), f32({b, n_state, l}),
            weight(DType::f32, {c}), f32({b, c, l}), weight(DType::f32, {c}), f32({b, c, n_state})})
      .outputs(2);
  add_case(cases, "SelectiveScan",
           {f32({b, c, 1}), f32({b, c, 1}, uniform(-3, 1)),
            weight(DType::f32, {c, n_state}, uniform(-2, -0.1)), f32({b, n_state, 1}), f32({b, n_state, 1}),
            weight(DType::f32, {c}), f32({b, c, 1}), weight(DType::f32, {c}), f32({b, c, n_state})})
      .outputs(2)
      .with_note("step");
  add_case(cases, "SelectiveScan",
           {f32({1, 1536, 2048}), f32({1, 1536, 2048}, uniform(-3, 1)),
            weight(DType::f32, {1536, 16}, uniform(-2, -0.1)), f32({1, 16, 2048}), f32({1, 16, 2048}),
            weight(DType::f32, {1536}), f32({1, 1536, 2048}), weight(DType::f32, {1536})})
      .perf();

  // RWKV: token shift with and without carried state; WKV with log decay w < 0 and a valid state
  // (numerator, denominator > 0, exponent offset).
  add_case(cases, "TokenShift", {f32({b, l, c}), f32({b, c})}).outputs(2).exact();
  add_case(cases, "TokenShift", {f32({b, l, c})}).exact().with_note("no state");
  const Fill wkv_state = custom([](Tensor& t, Rng& r) {
    std::uniform_real_distribution<float> num(-1.0f, 1.0f), den(0.5f, 2.0f);
    const int64_t channels = t.dim(2);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = (i / channels) % 3 == 1 ? den(r) : num(r);
  });
  add_case(cases, "RWKV4WKV",
           {f32({b, l, c}, uniform(-3, 3)), f32({b, l, c}), weight(DType::f32, {c}, uniform(-2.0, -0.05)),
            weight(DType::f32, {c}, uniform(-1, 1)), f32({b, 3, c}, wkv_state)})
      .outputs(2);
  add_case(cases, "RWKV4WKV",
           {f32({b, 1, c}, uniform(-3, 3)), f32({b, 1, c}), weight(DType::f32, {c}, uniform(-2.0, -0.05)),
            weight(DType::f32, {c}, uniform(-1, 1))})
      .with_note("one token, no state");
  add_case(cases, "RWKV4WKV",
           {f32({4, 1024, 1024}, uniform(-3, 3)), f32({4, 1024, 1024}),
            weight(DType::f32, {1024}, uniform(-2, -0.05)), weight(DType::f32, {1024})})
      .perf();

  add_case(cases, "LinearRecurrence", {f32({b, l, c}, uniform(0.5, 1.0)), f32({b, l, c}), f32({b, c})})
      .outputs(2);
  add_case(cases, "LinearRecurrence", {f32({b, c, l}, uniform(-1.0, 1.0)), f32({b, c, l})})
      .attr("axis", 2)
      .with_note("axis 2");
  add_case(cases, "LinearRecurrence", {f32({4, 2048, 1024}, uniform(0.5, 1.0)), f32({4, 2048, 1024})}).perf();
}

// More SelectiveScan cases for the kernels' edge paths: Bmat/Cmat grouped (Mamba-2 style) without
// softplus, the largest state (N = 64), bf16 activations with f32 A and D. Shapes come from a copy of
// `rng`, so these cases leave the shapes of every later case unchanged.
void add_selective_scan_cases(std::vector<Case>& cases, const Rng& table_rng) {
  Rng rng = table_rng;
  rng.discard(977);
  const int64_t b = pick(rng, 1, 2), d = pick(rng, 1, 24), n = pick(rng, 1, 20), l = pick(rng, 33, 100);
  const Fill a_fill = uniform(-2.0, -0.1), delta_fill = uniform(-3.0, 1.0);
  auto scan = [&](std::vector<InputSpec> inputs) -> Case& {
    return add_case(cases, "SelectiveScan", std::move(inputs));
  };
  scan({f32({b, 2 * d, l}), f32({b, 2 * d, l}, uniform(0.01, 0.5)), weight(DType::f32, {2 * d, n}, a_fill),
        f32({b, 2, n, l}), f32({b, 2, n, l})})
      .attr("delta_softplus", 0)
      .with_note("grouped, no softplus");
  scan({f32({1, 8, l}), f32({1, 8, l}, delta_fill), weight(DType::f32, {8, 64}, a_fill), f32({1, 64, l}),
        f32({1, 64, l}), weight(DType::f32, {8})})
      .outputs(2)
      .with_note("N = 64");
  scan({in(DType::bf16, {b, d, l}), in(DType::bf16, {b, d, l}, delta_fill),
        weight(DType::f32, {d, n}, a_fill), in(DType::bf16, {b, n, l}), in(DType::bf16, {b, n, l}),
        weight(DType::f32, {d}), in(DType::bf16, {b, d, l}, uniform(-3, 3)),
        weight(DType::f32, {d}, uniform(-1, 0))})
      .outputs(2)
      .with_note("bf16, f32 A and D");
}

// Scan: (sum, x_t) -> (sum + x_t * w, sum + x_t * w) with w captured from the outer graph.
std::shared_ptr<Graph> running_sum_body(int64_t width) {
  auto body = std::make_shared<Graph>("scan_body");
  Value* sum = body->add_input("sum_in", f32_type({width}));
  Value* x = body->add_input("x", f32_type({width}));
  Value* w = body->add_capture("w", f32_type({width}));
  Node* mul = body->add_node("Mul", {x, w}, 1);
  Node* add = body->add_node("Add", {sum, mul->output(0)}, 1);
  Node* out = body->add_node("Identity", {add->output(0)}, 1);
  body->set_outputs({add->output(0), out->output(0)});
  return body;
}

// Loop: (i, cond, y) -> (cond, tanh(y) + 0.5, y): carried state and a stacked scan output.
std::shared_ptr<Graph> loop_body(int64_t width) {
  auto body = std::make_shared<Graph>("loop_body");
  body->add_input("iter", TensorType(DType::i64, {}));
  Value* cond = body->add_input("cond_in", TensorType(DType::boolean, {}));
  Value* y = body->add_input("y_in", f32_type({width}));
  Node* keep = body->add_node("Identity", {cond}, 1);
  Node* t = body->add_node("Tanh", {y}, 1);
  Node* next =
      body->add_node("Add", {t->output(0), body->add_constant("half", Tensor::scalar<float>(0.5f))}, 1);
  Node* out = body->add_node("Identity", {y}, 1);
  body->set_outputs({keep->output(0), next->output(0), out->output(0)});
  return body;
}

// If branch: op(x, y) on two captured values.
std::shared_ptr<Graph> branch(const char* name, const char* op, const Shape& shape) {
  auto g = std::make_shared<Graph>(name);
  Value* x = g->add_capture("x", f32_type(shape));
  Value* y = g->add_capture("y", f32_type(shape));
  g->set_outputs({g->add_node(op, {x, y}, 1)->output(0)});
  return g;
}

void add_control_flow_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t n = pick(rng, 1, 12), t = pick(rng, 1, 10);
  add_case(cases, "Scan", {f32({n}), f32({t, n}), f32({n})})
      .attr("body", Attribute(running_sum_body(n)))
      .attr("num_scan_inputs", 1)
      .captures(1)
      .outputs(2);
  add_case(cases, "Scan", {f32({n}), f32({n, t}), f32({n})})
      .attr("body", Attribute(running_sum_body(n)))
      .attr("num_scan_inputs", 1)
      .attr("scan_input_axes", std::vector<int64_t>{1})
      .attr("scan_input_directions", std::vector<int64_t>{1})
      .attr("scan_output_axes", std::vector<int64_t>{1})
      .captures(1)
      .outputs(2)
      .with_note("axis 1 reversed");
  add_case(cases, "Loop", {const_i64({t}, true), in(DType::boolean, {}, bools(1.0)), f32({n})})
      .attr("body", Attribute(loop_body(n)))
      .outputs(2);
  for (double p_true : {1.0, 0.0}) {
    add_case(cases, "If", {in(DType::boolean, {}, bools(p_true)), f32({t, n}), f32({t, n})})
        .attr("then_branch", Attribute(branch("then", "Add", {t, n})))
        .attr("else_branch", Attribute(branch("else", "Mul", {t, n})))
        .captures(2)
        .with_note(p_true > 0 ? "then" : "else");
  }
}

}  // namespace

// MixedChunkAttention (GAU/FLASH): causal and not, a partial last chunk, the optional [C, C] bias.
void add_mixed_chunk_attention_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t b = pick(rng, 1, 2), c = 4 * pick(rng, 1, 4), t = c * pick(rng, 1, 4) + pick(rng, 0, 3),
                s = 8 * pick(rng, 1, 2), e = 8 * pick(rng, 1, 4);
  auto mca = [&](std::vector<InputSpec> inputs) -> Case& {
    const double flops = 2.0 * static_cast<double>(b * t) * static_cast<double>(c * (s + e) + 2 * s * e);
    return add_case(cases, "MixedChunkAttention", std::move(inputs))
        .attr("chunk_size", c)
        .cost_flops([flops](const Args&, const Args&) { return flops; });
  };
  const InputSpec q = f32({b, t, s}), v = f32({b, t, e});
  mca({q, q, q, q, v}).with_note("causal");
  mca({q, q, q, q, v, f32({c, c}, uniform(-0.5, 0.5))}).attr("causal", 0).with_note("non-causal, bias");
}

void add_sequence_cases(std::vector<Case>& cases, Rng& rng) {
  add_attention_cases(cases, rng);
  add_mixed_chunk_attention_cases(cases, rng);
  add_linear_attention_cases(cases, rng);
  add_chunked_linear_attention_cases(cases, rng);
  add_cached_attention_cases(cases, rng);
  add_scan_cases(cases, rng);
  add_selective_scan_cases(cases, rng);
  add_control_flow_cases(cases, rng);
}

}  // namespace seqrun::optest
