// The CPU backend's attention kernels (backends/cpu/chunked_attention.cpp, linear_attention.cpp) against
// the reference kernels, which are independent plain loops in double precision: Attention's and
// ChunkedAttention's row-at-a-time softmax (block-sparse layouts as a score-by-score bias there, skipped
// blocks in the CPU kernel), LinearAttention's token-by-token recurrence.
//
// Every case builds a one-node graph, asks cpu_backend() for a kernel (checking that the fast kernel, not
// the reference fallback, took it), runs it on poisoned outputs and compares with the reference by the
// normalized error sum((a - b)^2) / sum(b^2). Bounds, with the largest values observed when they were set
// (AVX-512 and AVX2 paths alike; the sweeps run both where the CPU has AVX-512):
//   ChunkedAttention / Attention: 1e-11 (f32 dot products and sums, vector exp within 1e-7; observed
//     <= 8e-14, softcap and masks included);
//   LinearAttention, chunkwise and recurrent: 1e-10 (f32 state and chunk products against the double
//     recurrence; the chunk factors exp(±G) add rounding; observed <= 1e-12).
// Shapes come from a fixed-seed generator (odd lengths, blocks that do not divide them, GQA, windows,
// masks of every rank), so failures reproduce.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_factories.h"
#include "backends/reference/kernel.h"
#include "ir/graph.h"
#include "ir/infer.h"

using namespace seqrun;
using seqrun::backends::KernelInfo;
using seqrun::backends::TensorArg;

namespace {

std::mt19937& rng() {
  static std::mt19937 gen(4321);
  return gen;
}

int64_t random_int(int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng());
}

template <typename T>
const T& pick(const std::vector<T>& options) {
  return options[static_cast<size_t>(random_int(0, static_cast<int64_t>(options.size()) - 1))];
}

Tensor random_f32(const Shape& shape, float lo = -1.0f, float hi = 1.0f) {
  Tensor t = Tensor::empty(DType::f32, shape);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng());
  return t;
}

struct Case {
  std::string op;
  std::vector<Tensor> inputs;  // undefined = absent optional input
  std::map<std::string, Attribute> attrs;
  int num_outputs = 1;
};

struct Built {
  std::unique_ptr<Graph> graph = std::make_unique<Graph>("one_node");
  Node* node = nullptr;
};

Built build(const Case& c) {
  Built b;
  std::vector<Value*> ins;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const Tensor& t = c.inputs[i];
    ins.push_back(t.defined() ? b.graph->add_input("in" + std::to_string(i),
                                                   TensorType::from_shape(t.dtype(), t.shape()))
                              : nullptr);
  }
  b.node = b.graph->add_node(c.op, ins, c.num_outputs, c.attrs);
  b.node->set_name("n");
  Status st = infer_node_types(*b.node);
  INFO(st.message());
  REQUIRE(st.is_ok());
  return b;
}

KernelInfo info_for(const Built& b, const Case& c) {
  KernelInfo info;
  info.node = b.node;
  info.threads = 2;
  for (const Tensor& t : c.inputs) {
    TensorArg a;
    if (t.defined()) {
      a.dtype = t.dtype();
      a.shape = t.shape();
    }
    info.inputs.push_back(a);
  }
  for (int i = 0; i < b.node->num_outputs(); ++i) {
    const TensorType& t = b.node->output(i)->type();
    auto shape = t.static_shape();
    REQUIRE(shape.has_value());
    info.outputs.push_back({t.dtype(), *shape, nullptr});
  }
  return info;
}

std::string picked(const Case& c) {
  Built b = build(c);
  KernelInfo info = info_for(b, c);
  auto kernel = backends::cpu_backend().kernels().create(info);
  REQUIRE(kernel != nullptr);
  return kernel->label();
}

struct FastRun {
  std::string label;
  std::vector<Tensor> outputs;
};

FastRun run_fast(const Case& c) {
  Built b = build(c);
  KernelInfo info = info_for(b, c);
  auto kernel = backends::cpu_backend().kernels().create(info);
  REQUIRE(kernel != nullptr);
  FastRun r;
  r.label = kernel->label();
  Status st = kernel->prepare(info);
  INFO(st.message());
  REQUIRE(st.is_ok());
  const size_t ws_bytes = (std::max<size_t>(kernel->workspace_bytes(), 64) + 63) / 64 * 64;
  void* workspace = std::aligned_alloc(64, ws_bytes);
  std::vector<TensorArg> ins = info.inputs;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (c.inputs[i].defined()) ins[i].data = const_cast<void*>(c.inputs[i].raw());
  }
  std::vector<TensorArg> outs = info.outputs;
  for (TensorArg& o : outs) {
    Tensor t = Tensor::empty(o.dtype, o.shape);
    for (int64_t k = 0; k < t.numel(); ++k) t.data<float>()[k] = std::nanf("");  // a skipped element fails
    o.data = t.raw();
    r.outputs.push_back(t);
  }
  st = kernel->run(ins, outs, workspace);
  std::free(workspace);
  INFO(r.label << ": " << st.message());
  REQUIRE(st.is_ok());
  return r;
}

std::vector<Tensor> run_reference(const Case& c) {
  Built b = build(c);
  const reference::KernelEntry* entry = reference::KernelRegistry::global().find(c.op);
  REQUIRE(entry != nullptr);
  reference::KernelContext ctx{*b.node, {}, {}, nullptr};
  for (const Tensor& t : c.inputs) ctx.inputs.push_back(t.defined() ? &t : nullptr);
  Status st = entry->fn(ctx);
  INFO(st.message());
  REQUIRE(st.is_ok());
  return ctx.outputs;
}

double normalized_error(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double num = 0.0, den = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.get_f64(i), y = b.get_f64(i);
    if (x == y) continue;
    num += (x - y) * (x - y);  // NaN makes the error NaN, which fails every bound
    den += y * y;
  }
  return den == 0.0 ? num : num / den;
}

void check_against_reference(const Case& c, const std::string& label, double bound) {
  FastRun fast = run_fast(c);
  INFO(c.op << " via " << fast.label);
  CHECK(fast.label == label);
  std::vector<Tensor> ref = run_reference(c);
  REQUIRE(ref.size() == fast.outputs.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    const double err = normalized_error(fast.outputs[i], ref[i]);
    INFO("output " << i << " shape " << shape_to_string(ref[i].shape()) << " error " << err);
    CHECK(err <= bound);
  }
}

constexpr double kSoftmaxBound = 1e-11;
constexpr double kLinearBound = 1e-10;

// ---------------------------------------------------------------------------------------------
// Softmax attention

struct AttentionSpec {
  int64_t batch = 1, kv_heads = 1, group = 1, q_len = 1, kv_len = 1, qk = 8, v = 8;
  bool causal = false;
  int64_t window = -1;
  float scale = 0.0f;  // 0: the default 1/sqrt(D)
  float softcap = 0.0f;
  int64_t block_q = 64, block_k = 64;
  int64_t sparse_block = 0, sparse_local = 1, sparse_stride = 1;  // block-sparse layout (with causal)
};

Case chunked_case(const AttentionSpec& s, Tensor mask = Tensor()) {
  const int64_t hq = s.kv_heads * s.group;
  Case c;
  c.op = "ChunkedAttention";
  const float amp = s.softcap != 0.0f ? 3.0f : 1.0f;  // larger scores so the softcap bends them
  c.inputs = {random_f32({s.batch, hq, s.q_len, s.qk}, -amp, amp),
              random_f32({s.batch, s.kv_heads, s.kv_len, s.qk}, -amp, amp),
              random_f32({s.batch, s.kv_heads, s.kv_len, s.v})};
  if (mask.defined()) c.inputs.push_back(mask);
  c.attrs["block_q"] = Attribute(s.block_q);
  c.attrs["block_k"] = Attribute(s.block_k);
  if (s.causal) c.attrs["is_causal"] = Attribute(int64_t{1});
  if (s.window >= 0) c.attrs["window"] = Attribute(s.window);
  if (s.scale != 0.0f) c.attrs["scale"] = Attribute(s.scale);
  if (s.softcap != 0.0f) c.attrs["softcap"] = Attribute(s.softcap);
  if (s.sparse_block > 0) {
    c.attrs["sparse_block"] = Attribute(s.sparse_block);
    c.attrs["sparse_local"] = Attribute(s.sparse_local);
    c.attrs["sparse_stride"] = Attribute(s.sparse_stride);
  }
  return c;
}

AttentionSpec random_attention_spec() {
  AttentionSpec s;
  s.batch = random_int(1, 2);
  s.kv_heads = random_int(1, 3);
  s.group = pick<int64_t>({1, 1, 2, 3});
  s.q_len = pick<int64_t>({1, 2, 7, 33, 63, 64, 65, 97, 130});
  s.kv_len = random_int(0, 3) == 0 ? pick<int64_t>({1, 5, 40, 64, 129}) : s.q_len;
  s.qk = pick<int64_t>({1, 8, 17, 64});
  s.v = pick<int64_t>({3, 8, 16, 24, 64});
  s.causal = random_int(0, 1) == 1;
  s.window = pick<int64_t>({-1, -1, 0, 3, 40});
  if (random_int(0, 2) == 0) s.scale = 0.3f;
  if (random_int(0, 3) == 0) s.softcap = 4.0f;
  s.block_q = pick<int64_t>({16, 32, 64, 64, 1000});
  s.block_k = pick<int64_t>({8, 32, 48, 64, 64});
  return s;
}

// ---------------------------------------------------------------------------------------------
// Linear attention

struct LinearSpec {
  int64_t batch = 1, kv_heads = 1, group = 1, tokens = 1, dk = 8, dv = 8;
  std::string rule = "linear";
  bool per_channel = true;                   // gated: decay [.., Hkv·dk] (else [.., Hkv])
  int64_t decay_batch = 1, decay_steps = 1;  // 1 or batch / tokens (broadcast)
  float decay_lo = -0.5f, decay_hi = 0.0f;   // log decay range
  bool bonus = false, past = false, present = true;
  float scale = 0.0f;
};

Case linear_case(const LinearSpec& s) {
  const int64_t hq = s.kv_heads * s.group;
  Case c;
  c.op = "LinearAttention";
  c.inputs = {random_f32({s.batch, s.tokens, hq * s.dk}), random_f32({s.batch, s.tokens, s.kv_heads * s.dk}),
              random_f32({s.batch, s.tokens, s.kv_heads * s.dv})};
  c.inputs.push_back(s.past ? random_f32({s.batch, s.kv_heads, s.dk, s.dv}) : Tensor());
  if (s.rule == "gated") {
    const int64_t width = s.per_channel ? s.kv_heads * s.dk : s.kv_heads;
    c.inputs.push_back(random_f32({s.decay_batch, s.decay_steps, width}, s.decay_lo, s.decay_hi));
  } else {
    c.inputs.push_back(Tensor());
  }
  c.inputs.push_back(Tensor());  // beta
  if (s.bonus) c.inputs.push_back(random_f32({s.kv_heads * s.dk}));
  while (!c.inputs.empty() && !c.inputs.back().defined()) c.inputs.pop_back();
  c.attrs["q_num_heads"] = Attribute(hq);
  c.attrs["kv_num_heads"] = Attribute(s.kv_heads);
  c.attrs["update_rule"] = Attribute(s.rule);
  if (s.scale != 0.0f) c.attrs["scale"] = Attribute(s.scale);
  c.num_outputs = s.present ? 2 : 1;
  return c;
}

LinearSpec random_linear_spec() {
  LinearSpec s;
  s.batch = random_int(1, 2);
  s.kv_heads = random_int(1, 2);
  s.group = pick<int64_t>({1, 1, 2});
  s.tokens = pick<int64_t>({1, 3, 8, 9, 63, 64, 65, 71, 150});
  s.dk = pick<int64_t>({4, 13, 16, 64});
  s.dv = pick<int64_t>({5, 16, 24, 64});
  s.rule = random_int(0, 1) == 1 ? "gated" : "linear";
  s.per_channel = random_int(0, 1) == 1;
  s.decay_batch = random_int(0, 1) == 1 ? s.batch : 1;
  s.decay_steps = random_int(0, 3) > 0 ? s.tokens : 1;
  s.bonus = random_int(0, 3) == 0;
  s.past = random_int(0, 1) == 1;
  s.present = random_int(0, 3) > 0;
  if (random_int(0, 2) == 0) s.scale = 0.5f;
  return s;
}

std::string describe(const LinearSpec& s) {
  return fmt::format(
      "B={} Hkv={} group={} T={} dk={} dv={} rule={} per_channel={} decay=[{},{}] bonus={} past={}", s.batch,
      s.kv_heads, s.group, s.tokens, s.dk, s.dv, s.rule, s.per_channel, s.decay_batch, s.decay_steps, s.bonus,
      s.past);
}

std::string describe(const AttentionSpec& s) {
  return fmt::format(
      "B={} Hkv={} group={} Sq={} T={} D={} Dv={} causal={} window={} scale={} softcap={} "
      "blocks={}x{} sparse={}/{}/{}",
      s.batch, s.kv_heads, s.group, s.q_len, s.kv_len, s.qk, s.v, s.causal, s.window, s.scale, s.softcap,
      s.block_q, s.block_k, s.sparse_block, s.sparse_local, s.sparse_stride);
}

}  // namespace

TEST_CASE("cpu ChunkedAttention matches the reference on random shapes (causal, window, GQA, softcap)") {
  for (bool avx512 : {true, false}) {  // the AVX-512 paths (where the CPU has them), then AVX2
    backends::cpu::set_attention_avx512(avx512);
    for (int trial = 0; trial < 60; ++trial) {
      const AttentionSpec s = random_attention_spec();
      INFO("avx512 " << avx512 << " trial " << trial << ": " << describe(s));
      check_against_reference(chunked_case(s), "avx2:chunked_attention", kSoftmaxBound);
    }
  }
  backends::cpu::set_attention_avx512(true);
}

TEST_CASE(
    "cpu ChunkedAttention with block-sparse layouts matches the reference (which masks score by score)") {
  for (bool avx512 : {true, false}) {
    backends::cpu::set_attention_avx512(avx512);
    for (int trial = 0; trial < 40; ++trial) {
      AttentionSpec s = random_attention_spec();
      s.causal = true;
      s.sparse_block = pick<int64_t>({8, 16, 32, 64});
      s.sparse_local = random_int(1, 3);
      s.sparse_stride = random_int(1, 4);
      s.q_len = pick<int64_t>({40, 97, 130, 200});
      s.kv_len = random_int(0, 3) == 0 ? pick<int64_t>({50, 129}) : s.q_len;
      if (random_int(0, 2) > 0) s.window = -1;
      INFO("avx512 " << avx512 << " trial " << trial << ": " << describe(s));
      Tensor mask;
      if (trial % 5 == 0) {  // an extra float bias on top of the layout
        mask = random_f32({s.q_len, s.kv_len}, -1.0f, 1.0f);
      }
      check_against_reference(chunked_case(s, mask), "avx2:chunked_attention", kSoftmaxBound);
    }
  }
  backends::cpu::set_attention_avx512(true);
  // A layout block over the kernel's largest tile, or an invalid layout: the reference takes it.
  AttentionSpec big;
  big.q_len = big.kv_len = 20;
  big.causal = true;
  big.sparse_block = 512;
  CHECK(picked(chunked_case(big)) == "reference");
}

TEST_CASE("cpu ChunkedAttention with bool and float masks of every rank, short masks and all-masked rows") {
  AttentionSpec s;
  s.batch = 2;
  s.kv_heads = 2;
  s.group = 2;
  s.q_len = 37;
  s.kv_len = 70;
  s.qk = 16;
  s.v = 12;
  s.block_q = 16;
  s.block_k = 32;
  for (int variant = 0; variant < 6; ++variant) {
    INFO("variant " << variant);
    Shape shape;
    switch (variant) {
      case 0:
        shape = {s.q_len, s.kv_len};
        break;
      case 1:
        shape = {s.batch, 1, s.q_len, s.kv_len};
        break;
      case 2:
        shape = {s.kv_len};
        break;
      case 3:
        shape = {1, s.kv_heads * s.group, s.q_len, s.kv_len - 9};
        break;  // shorter: padded with -inf
      case 4:
        shape = {s.batch, 1, 1, s.kv_len};
        break;
      default:
        shape = {s.q_len, 50};
        break;
    }
    const bool is_bool = variant % 2 == 0;
    Tensor mask = is_bool ? Tensor::empty(DType::boolean, shape) : random_f32(shape, -2.0f, 2.0f);
    for (int64_t i = 0; i < mask.numel(); ++i) {
      const bool keep = random_int(0, 3) > 0;
      if (is_bool) {
        mask.data<bool>()[i] = keep;
      } else if (!keep) {
        mask.data<float>()[i] = -std::numeric_limits<float>::infinity();
      }
    }
    // Row 3 of a 2-D mask masked entirely: that row's output must be 0.
    if (shape.size() == 2) {
      for (int64_t j = 0; j < shape[1]; ++j) {
        if (is_bool) {
          mask.data<bool>()[3 * shape[1] + j] = false;
        } else {
          mask.data<float>()[3 * shape[1] + j] = -std::numeric_limits<float>::infinity();
        }
      }
    }
    s.causal = variant >= 3;
    check_against_reference(chunked_case(s, mask), "avx2:chunked_attention", kSoftmaxBound);
  }
}

TEST_CASE("cpu ChunkedAttention: a window larger than the sequence and rows with no visible key") {
  AttentionSpec s;
  s.q_len = 90;
  s.kv_len = 20;  // causal rows beyond the keys, window rows before them
  s.qk = 8;
  s.v = 8;
  s.block_q = 16;
  s.block_k = 16;
  for (int64_t window : {int64_t{0}, int64_t{5}, int64_t{1} << 40}) {
    for (bool causal : {false, true}) {
      s.window = window;
      s.causal = causal;
      INFO(describe(s));
      check_against_reference(chunked_case(s), "avx2:chunked_attention", kSoftmaxBound);
    }
  }
}

TEST_CASE("cpu Attention: 4-D without KV cache runs the blocked kernel, causal or masked") {
  for (int trial = 0; trial < 12; ++trial) {
    AttentionSpec s = random_attention_spec();
    s.window = -1;
    INFO("trial " << trial << ": " << describe(s));
    Case c = chunked_case(s);
    c.op = "Attention";
    c.attrs.clear();
    if (s.causal) c.attrs["is_causal"] = Attribute(int64_t{1});
    if (s.scale != 0.0f) c.attrs["scale"] = Attribute(s.scale);
    if (s.softcap != 0.0f) c.attrs["softcap"] = Attribute(s.softcap);
    if (trial % 3 == 0) {
      Tensor mask = Tensor::empty(DType::boolean, {s.q_len, s.kv_len});
      for (int64_t i = 0; i < mask.numel(); ++i) mask.data<bool>()[i] = random_int(0, 4) > 0;
      c.inputs.push_back(mask);
    }
    check_against_reference(c, "avx2:attention", kSoftmaxBound);
  }
}

TEST_CASE("cpu Attention declines what the blocked kernel does not compute (reference runs it)") {
  Case base;
  base.op = "Attention";
  base.inputs = {random_f32({1, 2, 5, 8}), random_f32({1, 2, 5, 8}), random_f32({1, 2, 5, 8})};
  base.attrs["is_causal"] = Attribute(int64_t{1});
  CHECK(picked(base) == "avx2:attention");
  Case with_past = base;  // KV cache: past_key/past_value and present outputs
  with_past.inputs.push_back(Tensor());
  with_past.inputs.push_back(random_f32({1, 2, 3, 8}));
  with_past.inputs.push_back(random_f32({1, 2, 3, 8}));
  with_past.num_outputs = 3;
  CHECK(picked(with_past) == "reference");
  Case present = base;  // present_key requested
  present.num_outputs = 2;
  CHECK(picked(present) == "reference");
  Case packed;  // 3-D [B, S, H*D]
  packed.op = "Attention";
  packed.inputs = {random_f32({1, 5, 16}), random_f32({1, 5, 16}), random_f32({1, 5, 16})};
  packed.attrs["q_num_heads"] = Attribute(int64_t{2});
  packed.attrs["kv_num_heads"] = Attribute(int64_t{2});
  CHECK(picked(packed) == "reference");
  Case int_mask = base;  // a mask of another dtype: the reference reports the error
  int_mask.inputs.push_back(Tensor::zeros(DType::i64, {5, 5}));
  CHECK(picked(int_mask) == "reference");
}

TEST_CASE("cpu LinearAttention (linear, gated) chunkwise and recurrent match the recurrent reference") {
  for (bool avx512 : {true, false}) {
    backends::cpu::set_attention_avx512(avx512);
    for (int trial = 0; trial < 60; ++trial) {
      const LinearSpec s = random_linear_spec();
      INFO("avx512 " << avx512 << " trial " << trial << ": " << describe(s));
      check_against_reference(linear_case(s), "avx2:linear_attention", kLinearBound);
    }
  }
  backends::cpu::set_attention_avx512(true);
}

TEST_CASE("cpu LinearAttention: strong decays fall back to the recurrence per chunk, exactly") {
  LinearSpec s;
  s.batch = 1;
  s.kv_heads = 2;
  s.tokens = 200;
  s.dk = 16;
  s.dv = 16;
  s.rule = "gated";
  s.decay_steps = s.tokens;
  for (bool per_channel : {false, true}) {
    for (float lo : {-3.0f, -0.01f}) {  // 64 tokens x -3 exceed the chunk's factor range; -0.01 does not
      s.per_channel = per_channel;
      s.decay_lo = lo;
      s.decay_hi = lo / 2;
      s.bonus = lo < -1.0f;
      INFO(describe(s) << " log decay " << lo);
      check_against_reference(linear_case(s), "avx2:linear_attention", kLinearBound);
    }
  }
}

TEST_CASE("cpu LinearAttention decode steps carry the state like one long prefill") {
  // Prefill 100 tokens, then 5 one-token steps each fed the previous present state: every piece is
  // checked against the reference on the same inputs, and the final state against a 105-token prefill.
  LinearSpec s;
  s.kv_heads = 2;
  s.group = 2;
  s.dk = 16;
  s.dv = 32;
  s.rule = "gated";
  s.decay_steps = 1;
  s.tokens = 105;
  Case full = linear_case(s);
  const std::vector<Tensor> full_ref = run_reference(full);
  Tensor state;
  for (int64_t t0 = 0; t0 < s.tokens; t0 += (t0 == 0 ? 100 : 1)) {
    const int64_t len = t0 == 0 ? 100 : 1;
    Case part = full;
    for (int i = 0; i < 3; ++i) {
      const Tensor& x = full.inputs[i];
      const int64_t width = x.dim(2);
      Tensor slice = Tensor::empty(DType::f32, {1, len, width});
      for (int64_t j = 0; j < len * width; ++j) slice.data<float>()[j] = x.data<float>()[t0 * width + j];
      part.inputs[i] = slice;
    }
    part.inputs[3] = state;
    FastRun fast = run_fast(part);
    CHECK(fast.label == "avx2:linear_attention");
    const std::vector<Tensor> ref = run_reference(part);
    CHECK(normalized_error(fast.outputs[0], ref[0]) <= kLinearBound);
    state = fast.outputs[1];
  }
  CHECK(normalized_error(state, full_ref[1]) <= kLinearBound);
}

TEST_CASE("cpu LinearAttention declines the delta rules, which the reference runs") {
  LinearSpec s;
  s.tokens = 4;
  Case c = linear_case(s);
  c.attrs["update_rule"] = Attribute(std::string("delta"));
  c.inputs.resize(6);
  c.inputs[5] = random_f32({1, 4, 1}, 0.0f, 1.0f);
  CHECK(picked(c) == "reference");
  c.attrs["update_rule"] = Attribute(std::string("gated_delta"));
  c.inputs[4] = random_f32({1, 4, 1}, -1.0f, 0.0f);
  CHECK(picked(c) == "reference");
  Case linear = linear_case(s);
  CHECK(picked(linear) == "avx2:linear_attention");
}
