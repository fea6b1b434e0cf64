// CachedAttention (ir/ops/cached_attention.cpp): the reference kernel and the CPU kernel
// (backends/cpu/cached_attention.cpp, decode and prefill regimes) against a naive double-precision loop
// written here, on one-node graphs run by the ReferenceExecutor, by runtime::Session on the cpu backend,
// and by the CPU kernel called directly with aliased (in place) and separate, NaN-poisoned caches.
// Also: prefill + decode steps that carry the cache equal Attention(is_causal = 1) on the whole sequence,
// and bad positions / shapes / dtypes are Status errors naming the node.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_factories.h"
#include "backends/reference/kernel.h"
#include "ir/graph.h"
#include "ir/infer.h"
#include "runtime/executor.h"
#include "runtime/plan.h"
#include "runtime/session.h"

using namespace seqrun;

namespace {

constexpr double kTolerance = 1e-5;  // f32 kernels against the double loop, values of order 1

struct Spec {
  int64_t B = 1, Hq = 1, Hkv = 1, T = 1, C = 8, Dk = 8, Dv = 8, P = 0;
  int64_t window = -1;
  float softcap = 0.0f;
  float scale = 0.0f;  // 0: the default 1/sqrt(Dk)
};

std::string describe(const Spec& s) {
  return fmt::format("B={} Hq={} Hkv={} T={} C={} Dk={} Dv={} P={} window={} softcap={} scale={}", s.B, s.Hq,
                     s.Hkv, s.T, s.C, s.Dk, s.Dv, s.P, s.window, s.softcap, s.scale);
}

Tensor random_tensor(const Shape& shape, uint32_t seed, float amplitude = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-amplitude, amplitude);
  Tensor t = Tensor::empty(DType::f32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(gen);
  return t;
}

struct Inputs {
  Tensor q, k, v, k_cache, v_cache, position;
  std::vector<Tensor> list() const { return {q, k, v, k_cache, v_cache, position}; }
};

Inputs make_inputs(const Spec& s, uint32_t seed) {
  const float amp = s.softcap > 0.0f ? 3.0f : 1.0f;  // larger scores so the softcap bends them
  Inputs in;
  in.q = random_tensor({s.B, s.Hq, s.T, s.Dk}, seed, amp);
  in.k = random_tensor({s.B, s.Hkv, s.T, s.Dk}, seed + 1, amp);
  in.v = random_tensor({s.B, s.Hkv, s.T, s.Dv}, seed + 2);
  in.k_cache = random_tensor({s.B, s.Hkv, s.C, s.Dk}, seed + 3, amp);
  in.v_cache = random_tensor({s.B, s.Hkv, s.C, s.Dv}, seed + 4);
  in.position = Tensor::from_vector<int64_t>({1}, {s.P});
  return in;
}

// The op's definition, spelled out: new caches = old with rows P .. P+T-1 from K / V; query i (position
// P + i) attends over keys max(0, P+i-window) .. P+i of the new cache, scores scale·q·k, softcapped.
struct Expected {
  std::vector<double> y;
  std::vector<double> k_cache, v_cache;
};

Expected naive_cached_attention(const Spec& s, const Inputs& in) {
  Expected e;
  const auto& kc = in.k_cache;
  const auto& vc = in.v_cache;
  e.k_cache.assign(kc.data<float>(), kc.data<float>() + kc.numel());
  e.v_cache.assign(vc.data<float>(), vc.data<float>() + vc.numel());
  for (int64_t bg = 0; bg < s.B * s.Hkv; ++bg) {
    for (int64_t t = 0; t < s.T; ++t) {
      for (int64_t d = 0; d < s.Dk; ++d)
        e.k_cache[(bg * s.C + s.P + t) * s.Dk + d] = in.k.data<float>()[(bg * s.T + t) * s.Dk + d];
      for (int64_t d = 0; d < s.Dv; ++d)
        e.v_cache[(bg * s.C + s.P + t) * s.Dv + d] = in.v.data<float>()[(bg * s.T + t) * s.Dv + d];
    }
  }
  const double scale = s.scale != 0.0f ? s.scale : 1.0 / std::sqrt(static_cast<double>(s.Dk));
  e.y.assign(static_cast<size_t>(s.B * s.Hq * s.T * s.Dv), 0.0);
  for (int64_t b = 0; b < s.B; ++b) {
    for (int64_t h = 0; h < s.Hq; ++h) {
      const int64_t g = h / (s.Hq / s.Hkv);
      for (int64_t i = 0; i < s.T; ++i) {
        std::vector<double> w(static_cast<size_t>(s.C), 0.0);
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j <= s.P + i; ++j) {
          if (s.window >= 0 && j < s.P + i - s.window) continue;
          double dot = 0.0;
          for (int64_t d = 0; d < s.Dk; ++d) {
            dot += static_cast<double>(in.q.data<float>()[((b * s.Hq + h) * s.T + i) * s.Dk + d]) *
                   e.k_cache[((b * s.Hkv + g) * s.C + j) * s.Dk + d];
          }
          double x = dot * scale;
          if (s.softcap > 0.0f) x = s.softcap * std::tanh(x / s.softcap);
          w[j] = x;
          mx = std::max(mx, x);
        }
        double sum = 0.0;
        for (int64_t j = 0; j <= s.P + i; ++j) {
          if (s.window >= 0 && j < s.P + i - s.window) continue;
          sum += (w[j] = std::exp(w[j] - mx));
        }
        for (int64_t d = 0; d < s.Dv; ++d) {
          double acc = 0.0;
          for (int64_t j = 0; j <= s.P + i; ++j) {
            if (s.window >= 0 && j < s.P + i - s.window) continue;
            acc += w[j] / sum * e.v_cache[((b * s.Hkv + g) * s.C + j) * s.Dv + d];
          }
          e.y[((b * s.Hq + h) * s.T + i) * s.Dv + d] = acc;
        }
      }
    }
  }
  return e;
}

void check_outputs(const Spec& s, const Inputs& in, const std::vector<Tensor>& out) {
  INFO(describe(s));
  REQUIRE(out.size() == 3);
  const Expected e = naive_cached_attention(s, in);
  REQUIRE(out[0].shape() == Shape({s.B, s.Hq, s.T, s.Dv}));
  REQUIRE(out[1].shape() == in.k_cache.shape());
  REQUIRE(out[2].shape() == in.v_cache.shape());
  double worst = 0.0;
  for (size_t i = 0; i < e.y.size(); ++i) {
    const double err = std::abs(out[0].get_f64(static_cast<int64_t>(i)) - e.y[i]);
    worst = std::isnan(err) ? std::numeric_limits<double>::infinity() : std::max(worst, err);
  }
  INFO("worst |Y - naive| " << worst);
  CHECK(worst <= kTolerance);
  // The caches are copies: exact, including the rows at and beyond P + T (carried over unchanged).
  int64_t k_wrong = 0, v_wrong = 0;
  for (size_t i = 0; i < e.k_cache.size(); ++i) k_wrong += out[1].data<float>()[i] != e.k_cache[i];
  for (size_t i = 0; i < e.v_cache.size(); ++i) v_wrong += out[2].data<float>()[i] != e.v_cache[i];
  CHECK(k_wrong == 0);
  CHECK(v_wrong == 0);
}

std::unique_ptr<Graph> one_node_graph(const Spec& s, DType position_dtype = DType::i64,
                                      Shape position_shape = {1}) {
  auto g = std::make_unique<Graph>("cached_attention");
  std::vector<Value*> ins = {
      g->add_input("q", TensorType::from_shape(DType::f32, {s.B, s.Hq, s.T, s.Dk})),
      g->add_input("k", TensorType::from_shape(DType::f32, {s.B, s.Hkv, s.T, s.Dk})),
      g->add_input("v", TensorType::from_shape(DType::f32, {s.B, s.Hkv, s.T, s.Dv})),
      g->add_input("k_cache", TensorType::from_shape(DType::f32, {s.B, s.Hkv, s.C, s.Dk})),
      g->add_input("v_cache", TensorType::from_shape(DType::f32, {s.B, s.Hkv, s.C, s.Dv})),
      g->add_input("position", TensorType::from_shape(position_dtype, position_shape))};
  std::map<std::string, Attribute> attrs;
  if (s.window >= 0) attrs["window"] = Attribute(s.window);
  if (s.softcap > 0.0f) attrs["softcap"] = Attribute(s.softcap);
  if (s.scale != 0.0f) attrs["scale"] = Attribute(s.scale);
  Node* n = g->add_node("CachedAttention", ins, 3, attrs, {"y", "k_cache_out", "v_cache_out"});
  n->set_name("n");
  g->set_outputs({n->output(0), n->output(1), n->output(2)});
  return g;
}

Result<std::vector<Tensor>> run_reference_executor(const Spec& s, const std::vector<Tensor>& inputs) {
  std::unique_ptr<Graph> g = one_node_graph(s);
  SEQRUN_TRY(infer_graph_types(*g));
  return runtime::ReferenceExecutor().run(*g, inputs);
}

std::unique_ptr<runtime::Session> cpu_session(const Spec& s) {
  runtime::SessionOptions options;
  options.passes = std::vector<std::string>{};
  options.threads = 2;
  auto session = runtime::Session::from_graph(one_node_graph(s), options);
  INFO((session.is_ok() ? std::string("ok") : session.status().message()));
  REQUIRE(session.is_ok());
  return std::move(session).value();
}

// The kernel label the cpu session picked for the node.
std::string session_kernel(const runtime::Session& session, const std::vector<Tensor>& inputs) {
  auto placement = session.placement(runtime::input_specs_of(inputs));
  REQUIRE(placement.is_ok());
  for (const auto& p : *placement) {
    if (p.op == "CachedAttention") return p.kernel;
  }
  return "";
}

std::string expected_cpu_label(const Spec& s) {
  return s.T <= 8 ? "avx2:cached_attention_decode" : "avx2:cached_attention_prefill";
}

// The CPU kernel called directly: `aliased` passes the (copied) old caches as the new caches' memory,
// the in-place form; otherwise the new caches start as NaN so a row the kernel forgets fails.
std::vector<Tensor> run_cpu_kernel(const Spec& s, const Inputs& in, bool aliased) {
  std::unique_ptr<Graph> g = one_node_graph(s);
  REQUIRE(infer_graph_types(*g).is_ok());
  const Node* node = g->nodes()[0];
  backends::KernelInfo info;
  info.node = node;
  info.threads = 2;
  for (const Tensor& t : in.list()) info.inputs.push_back({t.dtype(), t.shape(), nullptr});
  for (int i = 0; i < 3; ++i)
    info.outputs.push_back({DType::f32, *node->output(i)->type().static_shape(), nullptr});
  auto kernel = backends::cpu_backend().kernels().create(info);
  REQUIRE(kernel != nullptr);
  CHECK(kernel->label() == expected_cpu_label(s));
  CHECK(kernel->can_run_in_place(1, 3));
  CHECK(kernel->can_run_in_place(2, 4));
  CHECK_FALSE(kernel->can_run_in_place(0, 0));
  REQUIRE(kernel->prepare(info).is_ok());
  const size_t ws_bytes = (std::max<size_t>(kernel->workspace_bytes(), 64) + 63) / 64 * 64;
  void* workspace = std::aligned_alloc(64, ws_bytes);
  std::vector<backends::TensorArg> ins = info.inputs;
  std::vector<Tensor> inputs = in.list();
  std::vector<Tensor> outs = {Tensor::empty(DType::f32, info.outputs[0].shape)};
  if (aliased) {
    inputs[3] = in.k_cache.clone();
    inputs[4] = in.v_cache.clone();
    outs.push_back(inputs[3]);
    outs.push_back(inputs[4]);
  } else {
    outs.push_back(Tensor::empty(DType::f32, info.outputs[1].shape));
    outs.push_back(Tensor::empty(DType::f32, info.outputs[2].shape));
    for (Tensor& t : outs) {
      for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = std::nanf("");
    }
  }
  for (size_t i = 0; i < ins.size(); ++i) ins[i].data = inputs[i].raw();
  std::vector<backends::TensorArg> out_args = info.outputs;
  for (size_t i = 0; i < 3; ++i) out_args[i].data = outs[i].raw();
  if (aliased) {
    CHECK(out_args[1].data == ins[3].data);
    CHECK(out_args[2].data == ins[4].data);
  }
  Status st = kernel->run(ins, out_args, workspace);
  std::free(workspace);
  INFO(st.message());
  REQUIRE(st.is_ok());
  return outs;
}

void check_all_paths(const Spec& s, uint32_t seed) {
  INFO(describe(s));
  const Inputs in = make_inputs(s, seed);
  {
    INFO("reference executor");
    auto out = run_reference_executor(s, in.list());
    INFO((out.is_ok() ? std::string("ok") : out.status().message()));
    REQUIRE(out.is_ok());
    check_outputs(s, in, *out);
  }
  {
    INFO("session on the cpu backend");
    auto session = cpu_session(s);
    CHECK(session_kernel(*session, in.list()) == expected_cpu_label(s));
    auto out = session->run(in.list());
    INFO((out.is_ok() ? std::string("ok") : out.status().message()));
    REQUIRE(out.is_ok());
    check_outputs(s, in, *out);
  }
  for (bool avx512 : {true, false}) {
    backends::cpu::set_attention_avx512(avx512);
    for (bool aliased : {false, true}) {
      INFO("cpu kernel direct, avx512 " << avx512 << ", aliased caches " << aliased);
      check_outputs(s, in, run_cpu_kernel(s, in, aliased));
    }
  }
  backends::cpu::set_attention_avx512(true);
}

}  // namespace

TEST_CASE("CachedAttention decode steps (T = 1): P = 0 and P > 0, GQA, Dk != Dv") {
  Spec s;
  s.C = 40;
  check_all_paths(s, 1);  // P = 0: the query sees only its own key
  s.P = 39;
  check_all_paths(s, 2);  // the last free row
  s.P = 17;
  s.B = 2, s.Hq = 6, s.Hkv = 2, s.Dk = 24, s.Dv = 40;
  check_all_paths(s, 3);
  s.C = 300, s.P = 211, s.Dk = 64, s.Dv = 64, s.Hq = 4, s.Hkv = 4;  // several key tiles, one partial
  check_all_paths(s, 4);
  s.Dk = 5, s.Dv = 3;  // below one vector
  check_all_paths(s, 5);
}

TEST_CASE("CachedAttention small T (decode regime): several tokens, window, softcap, scale") {
  Spec s;
  s.B = 1, s.Hq = 6, s.Hkv = 2, s.T = 3, s.C = 150, s.P = 70, s.Dk = 16, s.Dv = 20;
  check_all_paths(s, 10);
  s.T = 8, s.P = 0;
  check_all_paths(s, 11);
  s.window = 0;  // each query sees only itself
  check_all_paths(s, 12);
  s.window = 5, s.P = 100;
  check_all_paths(s, 13);
  s.window = 90;  // the window starts inside the first key tile
  check_all_paths(s, 14);
  s.window = -1;
  s.softcap = 2.0f, s.scale = 0.5f;
  check_all_paths(s, 15);
}

TEST_CASE("CachedAttention larger T (prefill regime): P = 0 and P > 0, GQA, window, softcap") {
  Spec s;
  s.B = 2, s.Hq = 6, s.Hkv = 2, s.T = 13, s.C = 20, s.Dk = 16, s.Dv = 24;
  check_all_paths(s, 20);
  s.P = 7;  // exactly full afterwards
  check_all_paths(s, 21);
  s.B = 1, s.T = 70, s.C = 200, s.P = 45, s.Dk = 64, s.Dv = 32;  // two query blocks, keys over three
  check_all_paths(s, 22);
  s.window = 30;
  check_all_paths(s, 23);
  s.window = -1, s.softcap = 3.0f, s.P = 0, s.Hq = 2, s.Hkv = 2;
  check_all_paths(s, 24);
}

TEST_CASE("CachedAttention: the plan runs the kernel in place when the old cache dies at the node") {
  // %kc, %vc come from a Neg (arena buffers that die at CachedAttention); the new caches feed another Neg,
  // so they are arena buffers too and the planner may put each over its old cache.
  Spec s;
  s.B = 1, s.Hq = 4, s.Hkv = 2, s.T = 1, s.C = 64, s.P = 20, s.Dk = 16, s.Dv = 16;
  const Inputs in = make_inputs(s, 30);
  auto g = std::make_unique<Graph>("in_place");
  std::vector<Value*> ins;
  const std::vector<Tensor> tensors = in.list();
  const char* names[6] = {"q", "k", "v", "neg_k_cache", "neg_v_cache", "position"};
  for (int i = 0; i < 6; ++i)
    ins.push_back(g->add_input(names[i], TensorType::from_shape(tensors[i].dtype(), tensors[i].shape())));
  Node* nk = g->add_node("Neg", {ins[3]}, 1, {}, {"kc"});
  Node* nv = g->add_node("Neg", {ins[4]}, 1, {}, {"vc"});
  Node* att = g->add_node("CachedAttention", {ins[0], ins[1], ins[2], nk->output(0), nv->output(0), ins[5]},
                          3, {}, {"y", "kc2", "vc2"});
  Node* ok = g->add_node("Neg", {att->output(1)}, 1, {}, {"neg_kc2"});
  Node* ov = g->add_node("Neg", {att->output(2)}, 1, {}, {"neg_vc2"});
  g->set_outputs({att->output(0), ok->output(0), ov->output(0)});
  REQUIRE(infer_graph_types(*g).is_ok());
  runtime::PlanOptions options;
  options.threads = 2;
  auto plan = runtime::ExecutionPlan::build(std::move(g), options);
  INFO((plan.is_ok() ? std::string("ok") : plan.status().message()));
  REQUIRE(plan.is_ok());
  CHECK((*plan)->memory_report().inplace_steps >= 2);
  bool fast = false;
  for (const auto& p : (*plan)->placement()) fast = fast || p.kernel == "avx2:cached_attention_decode";
  CHECK(fast);
  auto negate = [](const Tensor& t) {
    Tensor n = t.clone();
    for (int64_t i = 0; i < n.numel(); ++i) n.data<float>()[i] = -n.data<float>()[i];
    return n;
  };
  std::vector<Tensor> outputs;
  Status st = (*plan)->run({in.q, in.k, in.v, negate(in.k_cache), negate(in.v_cache), in.position}, outputs);
  INFO(st.message());
  REQUIRE(st.is_ok());
  check_outputs(s, in, {outputs[0], negate(outputs[1]), negate(outputs[2])});
}

TEST_CASE("CachedAttention: prefill then decode steps carrying the cache equal causal Attention") {
  // Chunks of the same sequence fed one after another, each with the previous step's new caches, give
  // the rows of Attention(is_causal = 1) over the whole sequence (its reference kernel, another loop).
  const int64_t B = 2, Hq = 6, Hkv = 2, Dk = 16, Dv = 12, C = 48;
  for (const std::vector<int64_t>& chunks :
       {std::vector<int64_t>{5, 1, 3, 1, 1, 1}, std::vector<int64_t>{20, 1, 9, 1, 1}}) {
    int64_t S = 0;
    for (int64_t t : chunks) S += t;
    const Tensor q = random_tensor({B, Hq, S, Dk}, 40), k = random_tensor({B, Hkv, S, Dk}, 41),
                 v = random_tensor({B, Hkv, S, Dv}, 42);
    Graph full;
    Value* fq = full.add_input("q", TensorType::from_shape(DType::f32, q.shape()));
    Value* fk = full.add_input("k", TensorType::from_shape(DType::f32, k.shape()));
    Value* fv = full.add_input("v", TensorType::from_shape(DType::f32, v.shape()));
    Node* att = full.add_node("Attention", {fq, fk, fv}, 1, {{"is_causal", Attribute(int64_t{1})}}, {"y"});
    full.set_outputs({att->output(0)});
    REQUIRE(infer_graph_types(full).is_ok());
    auto want = runtime::ReferenceExecutor().run(full, {q, k, v});
    REQUIRE(want.is_ok());
    const Tensor& y_full = (*want)[0];

    // Rows [t0, t0 + len) of a [B, H, S, D] tensor.
    auto rows = [](const Tensor& x, int64_t t0, int64_t len) {
      const int64_t BH = x.dim(0) * x.dim(1), S = x.dim(2), D = x.dim(3);
      Tensor out = Tensor::empty(DType::f32, {x.dim(0), x.dim(1), len, D});
      for (int64_t bh = 0; bh < BH; ++bh) {
        for (int64_t i = 0; i < len * D; ++i)
          out.data<float>()[bh * len * D + i] = x.data<float>()[(bh * S + t0) * D + i];
      }
      return out;
    };
    for (int path = 0; path < 2; ++path) {
      INFO((path == 0 ? "reference executor" : "cpu session") << ", chunks of " << chunks.size());
      Tensor k_cache = Tensor::zeros(DType::f32, {B, Hkv, C, Dk});
      Tensor v_cache = Tensor::zeros(DType::f32, {B, Hkv, C, Dv});
      int64_t P = 0;
      double worst = 0.0;
      for (int64_t T : chunks) {
        Spec s;
        s.B = B, s.Hq = Hq, s.Hkv = Hkv, s.T = T, s.C = C, s.Dk = Dk, s.Dv = Dv, s.P = P;
        const std::vector<Tensor> step = {rows(q, P, T), rows(k, P, T),
                                          rows(v, P, T), k_cache,
                                          v_cache,       Tensor::from_vector<int64_t>({1}, {P})};
        Result<std::vector<Tensor>> out =
            path == 0 ? run_reference_executor(s, step) : cpu_session(s)->run(step);
        INFO((out.is_ok() ? std::string("ok") : out.status().message()));
        REQUIRE(out.is_ok());
        const Tensor want_rows = rows(y_full, P, T);
        for (int64_t i = 0; i < want_rows.numel(); ++i)
          worst = std::max(worst, std::abs((*out)[0].get_f64(i) - want_rows.get_f64(i)));
        k_cache = (*out)[1];
        v_cache = (*out)[2];
        P += T;
      }
      INFO("worst |Y - Attention| " << worst);
      CHECK(worst <= 1e-5);
    }
  }
}

TEST_CASE("CachedAttention: bad positions, shapes and dtypes are errors naming the node") {
  Spec s;
  s.Hq = 2, s.Hkv = 2, s.T = 3, s.C = 10, s.P = 8;  // 8 + 3 > 10
  Inputs in = make_inputs(s, 50);
  auto session = cpu_session(s);
  for (int64_t bad : {int64_t{8}, int64_t{-1}, int64_t{1} << 62}) {
    INFO("position " << bad);
    in.position = Tensor::from_vector<int64_t>({1}, {bad});
    auto r = run_reference_executor(s, in.list());
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().message().find("CachedAttention 'n'") != std::string::npos);
    CHECK(r.status().message().find(bad < 0 ? "negative" : "exceeds the cache capacity 10") !=
          std::string::npos);
    auto c = session->run(in.list());
    REQUIRE_FALSE(c.is_ok());
    CHECK(c.status().message().find("CachedAttention 'n'") != std::string::npos);
    CHECK(c.status().message().find(bad < 0 ? "negative" : "exceeds the cache capacity 10") !=
          std::string::npos);
  }
  s.P = 7;  // fits exactly
  in.position = Tensor::from_vector<int64_t>({1}, {7});
  CHECK(run_reference_executor(s, in.list()).is_ok());
  CHECK(session->run(in.list()).is_ok());

  // A position of another dtype: shape inference rejects the graph; a tensor of the wrong dtype is
  // rejected by the executor; the kernel itself checks too.
  std::unique_ptr<Graph> g = one_node_graph(s, DType::i32);
  Status st = infer_graph_types(*g);
  REQUIRE_FALSE(st.is_ok());
  CHECK(st.message().find("position must be i64") != std::string::npos);
  CHECK_FALSE(infer_graph_types(*one_node_graph(s, DType::i64, {2})).is_ok());
  std::vector<Tensor> wrong = in.list();
  wrong[5] = Tensor::from_vector<int32_t>({1}, {1});
  CHECK_FALSE(run_reference_executor(s, wrong).is_ok());
  CHECK_FALSE(session->run(wrong).is_ok());
  {
    std::unique_ptr<Graph> ok = one_node_graph(s);
    REQUIRE(infer_graph_types(*ok).is_ok());
    const reference::KernelEntry* entry = reference::KernelRegistry::global().find("CachedAttention");
    REQUIRE(entry != nullptr);
    reference::KernelContext ctx{*ok->nodes()[0], {}, {}, nullptr};
    for (const Tensor& t : wrong) ctx.inputs.push_back(&t);
    Status k = entry->fn(ctx);
    REQUIRE_FALSE(k.is_ok());
    CHECK(k.message().find("CachedAttention 'n': position must be i64") != std::string::npos);
  }

  // Caches whose head size disagrees with K: the kernel's shape check (the CPU factory declines).
  Spec bad_shape = s;
  bad_shape.P = 0;
  Inputs mismatched = make_inputs(bad_shape, 51);
  mismatched.k_cache = random_tensor({1, 2, 10, 7}, 52);
  auto g2 = std::make_unique<Graph>("mismatch");
  std::vector<Value*> ins;
  const std::vector<Tensor> tensors = mismatched.list();
  for (size_t i = 0; i < tensors.size(); ++i)
    ins.push_back(g2->add_input("in" + std::to_string(i),
                                TensorType::from_shape(tensors[i].dtype(), tensors[i].shape())));
  Node* n = g2->add_node("CachedAttention", ins, 3, {}, {"y", "kc", "vc"});
  n->set_name("n");
  g2->set_outputs({n->output(0), n->output(1), n->output(2)});
  REQUIRE(infer_graph_types(*g2).is_ok());
  auto r = runtime::ReferenceExecutor().run(*g2, tensors);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find("CachedAttention 'n'") != std::string::npos);
  CHECK(r.status().message().find("do not match") != std::string::npos);
  runtime::SessionOptions options;
  options.passes = std::vector<std::string>{};
  auto s2 = runtime::Session::from_graph(std::move(g2), options);
  REQUIRE(s2.is_ok());
  auto r2 = (*s2)->run(tensors);
  REQUIRE_FALSE(r2.is_ok());
  CHECK(r2.status().message().find("do not match") != std::string::npos);

  // 3 query heads cannot share 2 kv heads: shape inference says so.
  Spec heads = s;
  heads.Hq = 3;
  CHECK_FALSE(infer_graph_types(*one_node_graph(heads)).is_ok());
}
