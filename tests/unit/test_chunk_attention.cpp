// chunk-attention pass and the ChunkedAttention reference kernel: the kernel against a naive
// double-precision softmax attention written here (causal, window, block-sparse layouts, GQA, softcap,
// bool / float / short masks, fully masked rows, block sizes that do not divide the lengths), and the pass
// as IR text in -> IR text out: when it chunks (long keys, big scores), how it folds causal/window masks
// into attributes, which constant masks it recognizes as block-sparse layouts, and the Attention nodes and
// masks it must leave alone.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <random>

#include "ir/infer.h"
#include "ir/text.h"
#include "ir/verify.h"
#include "passes/chunk_attention.h"
#include "passes/pass.h"
#include "runtime/executor.h"

using namespace seqrun;

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

Tensor random_tensor(const Shape& shape, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.5f, 1.5f);
  Tensor t = Tensor::empty(DType::f32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(gen);
  return t;
}

struct Problem {
  int64_t B = 1, Hq = 1, Hkv = 1, Sq = 1, T = 1, D = 4, Dv = 4;
  bool causal = false;
  int64_t window = -1;
  int64_t sparse_block = 0, sparse_local = 1, sparse_stride = 1;  // block-sparse layout (with causal)
  double softcap = 0.0;
  std::optional<double> scale;
  Tensor mask;  // undefined: none; bool (true = attend) or f32 additive, right-aligned to [B, Hq, Sq, Tm]
};

// Naive attention: per row, bias = mask (keys past the mask's length: -inf) + causal + window; a row
// whose bias is -inf everywhere outputs 0; otherwise softmax(scale·q·k (softcapped) + bias) · v.
std::vector<double> naive_attention(const Problem& p, const Tensor& q, const Tensor& k, const Tensor& v) {
  std::vector<double> y(p.B * p.Hq * p.Sq * p.Dv, 0.0);
  const double scale = p.scale ? *p.scale : 1.0 / std::sqrt(static_cast<double>(p.D));
  auto mask_at = [&](int64_t b, int64_t h, int64_t i, int64_t j) -> double {
    if (!p.mask.defined()) return 0.0;
    const Tensor& m = p.mask;
    int64_t dims[4] = {1, 1, 1, 1};
    for (int a = 0; a < m.rank(); ++a) dims[4 - m.rank() + a] = m.dim(a);
    if (j >= dims[3]) return kNegInf;
    const int64_t idx[4] = {dims[0] == 1 ? 0 : b, dims[1] == 1 ? 0 : h, dims[2] == 1 ? 0 : i, j};
    const int64_t off = ((idx[0] * dims[1] + idx[1]) * dims[2] + idx[2]) * dims[3] + idx[3];
    if (m.dtype() == DType::boolean) return m.data<bool>()[off] ? 0.0 : kNegInf;
    return m.data<float>()[off];
  };
  for (int64_t b = 0; b < p.B; ++b) {
    for (int64_t h = 0; h < p.Hq; ++h) {
      const int64_t kvh = h / (p.Hq / p.Hkv);
      for (int64_t i = 0; i < p.Sq; ++i) {
        std::vector<double> s(p.T);
        bool all_masked = true;
        for (int64_t j = 0; j < p.T; ++j) {
          double bias = mask_at(b, h, i, j);
          if (p.causal && j > i) bias = kNegInf;
          if (p.window >= 0 && j < i - p.window) bias = kNegInf;
          const int64_t sb = p.sparse_block;
          if (sb > 0 && i / sb - j / sb >= p.sparse_local &&
              (j / sb) % p.sparse_stride != p.sparse_stride - 1)
            bias = kNegInf;
          if (bias != kNegInf) all_masked = false;
          double dot = 0.0;
          for (int64_t c = 0; c < p.D; ++c) {
            dot += static_cast<double>(q.data<float>()[((b * p.Hq + h) * p.Sq + i) * p.D + c]) *
                   k.data<float>()[((b * p.Hkv + kvh) * p.T + j) * p.D + c];
          }
          double x = dot * scale;
          if (p.softcap != 0.0) x = p.softcap * std::tanh(x / p.softcap);
          s[j] = x + bias;
        }
        if (all_masked) continue;
        double mx = kNegInf;
        for (double x : s) mx = std::max(mx, x);
        double sum = 0.0;
        for (double& x : s) sum += (x = std::exp(x - mx));
        for (int64_t c = 0; c < p.Dv; ++c) {
          double acc = 0.0;
          for (int64_t j = 0; j < p.T; ++j)
            acc += s[j] / sum * v.data<float>()[((b * p.Hkv + kvh) * p.T + j) * p.Dv + c];
          y[((b * p.Hq + h) * p.Sq + i) * p.Dv + c] = acc;
        }
      }
    }
  }
  return y;
}

// Builds a one-node graph of `op` (ChunkedAttention or Attention) for the problem and runs it.
Tensor run_node(const std::string& op, const Problem& p, const Tensor& q, const Tensor& k, const Tensor& v,
                int64_t block_q, int64_t block_k) {
  Graph g;
  std::vector<Value*> inputs = {g.add_input("q", TensorType::from_shape(DType::f32, q.shape())),
                                g.add_input("k", TensorType::from_shape(DType::f32, k.shape())),
                                g.add_input("v", TensorType::from_shape(DType::f32, v.shape()))};
  std::vector<Tensor> values = {q, k, v};
  if (p.mask.defined()) {
    inputs.push_back(g.add_input("mask", TensorType::from_shape(p.mask.dtype(), p.mask.shape())));
    values.push_back(p.mask);
  }
  std::map<std::string, Attribute> attrs;
  if (p.causal) attrs["is_causal"] = Attribute(int64_t{1});
  if (p.softcap != 0.0) attrs["softcap"] = Attribute(static_cast<float>(p.softcap));
  if (p.scale) attrs["scale"] = Attribute(static_cast<float>(*p.scale));
  if (op == "ChunkedAttention") {
    attrs["block_q"] = Attribute(block_q);
    attrs["block_k"] = Attribute(block_k);
    if (p.window >= 0) attrs["window"] = Attribute(p.window);
    if (p.sparse_block > 0) {
      attrs["sparse_block"] = Attribute(p.sparse_block);
      attrs["sparse_local"] = Attribute(p.sparse_local);
      attrs["sparse_stride"] = Attribute(p.sparse_stride);
    }
  }
  Node* n = g.add_node(op, inputs, 1, attrs, {"y"});
  g.set_outputs({n->output(0)});
  REQUIRE(infer_graph_types(g).is_ok());
  auto r = runtime::ReferenceExecutor().run(g, values);
  INFO((r.is_ok() ? std::string("ok") : r.status().message()));
  REQUIRE(r.is_ok());
  return (*r)[0];
}

void check_chunked(const Problem& p, int64_t block_q, int64_t block_k, uint32_t seed) {
  const Tensor q = random_tensor({p.B, p.Hq, p.Sq, p.D}, seed);
  const Tensor k = random_tensor({p.B, p.Hkv, p.T, p.D}, seed + 1);
  const Tensor v = random_tensor({p.B, p.Hkv, p.T, p.Dv}, seed + 2);
  const std::vector<double> want = naive_attention(p, q, k, v);
  const Tensor got = run_node("ChunkedAttention", p, q, k, v, block_q, block_k);
  REQUIRE(got.numel() == static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("element " << i);
    CHECK(got.get_f64(static_cast<int64_t>(i)) == Approx(want[i]).margin(1e-5));
  }
}

std::unique_ptr<Graph> parse_ok(const std::string& text) {
  auto g = parse_graph(text);
  INFO(g.status().message());
  REQUIRE(g.is_ok());
  return std::move(g).value();
}

std::string run_chunk(const std::string& text, passes::ChunkAttentionOptions options = {}) {
  std::unique_ptr<Graph> g = parse_ok(text);
  passes::ChunkAttentionPass pass(options);
  auto changed = pass.run(*g);
  REQUIRE(changed.is_ok());
  if (*changed) {
    Status st = infer_graph_types(*g);
    if (st) st = verify_graph(*g);
    INFO(st.message());
    REQUIRE(st.is_ok());
  }
  return print_graph(*g);
}

std::string normalize(const std::string& text) {
  return print_graph(*parse_ok(text));
}

}  // namespace

// ------------------------------------------------------------------------------ the kernel

TEST_CASE("ChunkedAttention: GQA, default scale, blocks that do not divide the lengths") {
  Problem p;
  p.B = 2, p.Hq = 4, p.Hkv = 2, p.Sq = 13, p.T = 21, p.D = 8, p.Dv = 6;
  check_chunked(p, 4, 8, 1);
  check_chunked(p, 64, 64, 2);  // one block
  check_chunked(p, 1, 1, 3);    // every element its own block
}

TEST_CASE("ChunkedAttention: causal, sliding window and softcap, with block skipping") {
  Problem p;
  p.Hq = 2, p.Hkv = 1, p.Sq = 29, p.T = 29, p.D = 4, p.Dv = 4;
  p.causal = true;
  check_chunked(p, 4, 4, 4);
  p.window = 5;
  check_chunked(p, 4, 3, 5);
  p.softcap = 2.5;
  p.scale = 0.7;
  check_chunked(p, 8, 5, 6);
  p.causal = false;  // a window alone also masks keys far to the left only
  check_chunked(p, 6, 4, 7);
}

TEST_CASE("ChunkedAttention: bool mask with fully masked rows gives zeros; short float mask padded") {
  Problem p;
  p.B = 2, p.Hq = 2, p.Hkv = 2, p.Sq = 7, p.T = 9;
  p.mask = Tensor::empty(DType::boolean, {2, 1, 7, 9});
  std::mt19937 gen(9);
  for (int64_t i = 0; i < p.mask.numel(); ++i) p.mask.data<bool>()[i] = (gen() % 3) != 0;
  for (int64_t j = 0; j < 9; ++j) p.mask.data<bool>()[2 * 9 + j] = false;  // batch 0, row 2: nothing visible
  check_chunked(p, 3, 4, 8);
  p.causal = true;
  check_chunked(p, 2, 2, 9);

  Problem f;
  f.Hq = 3, f.Hkv = 1, f.Sq = 5, f.T = 11;
  f.mask = random_tensor({5, 8}, 10);  // last dim 8 < 11 keys: keys 8..10 are masked
  f.mask.data<float>()[3] = -std::numeric_limits<float>::infinity();
  check_chunked(f, 2, 3, 11);
}

TEST_CASE("ChunkedAttention: matches the Attention kernel on the same inputs") {
  Problem p;
  p.B = 1, p.Hq = 4, p.Hkv = 2, p.Sq = 17, p.T = 17, p.D = 8, p.Dv = 8;
  p.causal = true;
  p.mask = random_tensor({17, 17}, 12);
  const Tensor q = random_tensor({1, 4, 17, 8}, 13), k = random_tensor({1, 2, 17, 8}, 14),
               v = random_tensor({1, 2, 17, 8}, 15);
  const Tensor a = run_node("Attention", p, q, k, v, 0, 0);
  const Tensor c = run_node("ChunkedAttention", p, q, k, v, 5, 4);
  for (int64_t i = 0; i < a.numel(); ++i) CHECK(c.get_f64(i) == Approx(a.get_f64(i)).margin(1e-5));
}

TEST_CASE("ChunkedAttention: bad shapes and attributes are errors naming the node") {
  Problem p;
  p.Hq = 3, p.Hkv = 2;  // 3 query heads cannot share 2 kv heads
  const Tensor q = random_tensor({1, 3, 2, 4}, 1), k = random_tensor({1, 2, 2, 4}, 2),
               v = random_tensor({1, 2, 2, 4}, 3);
  Graph g;
  Value* in[3] = {g.add_input("q", TensorType::from_shape(DType::f32, q.shape())),
                  g.add_input("k", TensorType::from_shape(DType::f32, k.shape())),
                  g.add_input("v", TensorType::from_shape(DType::f32, v.shape()))};
  Node* n = g.add_node("ChunkedAttention", {in[0], in[1], in[2]}, 1, {}, {"y"});
  g.set_outputs({n->output(0)});
  REQUIRE(infer_graph_types(g).is_ok());
  auto r = runtime::ReferenceExecutor().run(g, {q, k, v});
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find("ChunkedAttention") != std::string::npos);
  n->set_attr("block_q", Attribute(int64_t{0}));
  CHECK_FALSE(infer_graph_types(g).is_ok());
}

// ------------------------------------------------------------------------------ the pass

TEST_CASE("chunk-attention: Attention over 1024 keys becomes ChunkedAttention") {
  const std::string in = R"(
graph main(%q: f32[1, 2, 1024, 8], %k: f32[1, 2, 1024, 8], %v: f32[1, 2, 1024, 8]) {
  %y = Attention(%q, %k, %v) {is_causal = 1, scale = 0.25} : f32[1, 2, 1024, 8]
  return %y
}
)";
  const std::string expected = R"(
graph main(%q: f32[1, 2, 1024, 8], %k: f32[1, 2, 1024, 8], %v: f32[1, 2, 1024, 8]) {
  %y = ChunkedAttention(%q, %k, %v) {block_k = 64, block_q = 64, is_causal = 1, scale = 0.25} : f32[1, 2, 1024, 8]
  return %y
}
)";
  CHECK(run_chunk(in) == normalize(expected));
}

TEST_CASE("chunk-attention: short sequences stay Attention unless the scores exceed the memory budget") {
  const std::string small = R"(
graph main(%q: f32[1, 2, 16, 8], %k: f32[1, 2, 16, 8], %v: f32[1, 2, 16, 8]) {
  %y = Attention(%q, %k, %v) : f32[1, 2, 16, 8]
  return %y
}
)";
  CHECK(run_chunk(small) == normalize(small));
  // 8 x 16 heads x 512 x 512 x 4 bytes = 128 MiB of scores, over the 64 MiB budget.
  const std::string big = R"(
graph main(%q: f32[8, 16, 512, 8], %k: f32[8, 16, 512, 8], %v: f32[8, 16, 512, 8]) {
  %y = Attention(%q, %k, %v) : f32[8, 16, 512, 8]
  return %y
}
)";
  CHECK(run_chunk(big).find("%y = ChunkedAttention(%q, %k, %v) {block_k = 64, block_q = 64}") !=
        std::string::npos);
}

TEST_CASE("chunk-attention: leaves alone symbolic lengths, KV caches, nonpad and used extra outputs") {
  const std::string symbolic = R"(
graph main(%q: f32[1, 2, seq, 8], %k: f32[1, 2, seq, 8], %v: f32[1, 2, seq, 8]) {
  %y = Attention(%q, %k, %v) {is_causal = 1} : f32[1, 2, seq, 8]
  return %y
}
)";
  passes::ChunkAttentionOptions always;
  always.min_keys = 1;
  CHECK(run_chunk(symbolic, always) == normalize(symbolic));
  const std::string cached = R"(
graph main(%q: f32[1, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8], %pk: f32[1, 2, 3, 8], %pv: f32[1, 2, 3, 8]) {
  %y, %pk2, %pv2 = Attention(%q, %k, %v, _, %pk, %pv) {is_causal = 1} : f32[1, 2, 4, 8], f32[1, 2, 7, 8], f32[1, 2, 7, 8]
  return %y, %pk2, %pv2
}
)";
  CHECK(run_chunk(cached, always) == normalize(cached));
  const std::string nonpad = R"(
graph main(%q: f32[2, 2, 4, 8], %k: f32[2, 2, 4, 8], %v: f32[2, 2, 4, 8], %len: i64[2]) {
  %y = Attention(%q, %k, %v, _, _, _, %len) : f32[2, 2, 4, 8]
  return %y
}
)";
  CHECK(run_chunk(nonpad, always) == normalize(nonpad));
  const std::string probs = R"(
graph main(%q: f32[1, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8]) {
  %y, %a, %b, %p = Attention(%q, %k, %v) {qk_matmul_output_mode = 3} : f32[1, 2, 4, 8], f32[1, 2, 4, 8], f32[1, 2, 4, 8], f32[1, 2, 4, 4]
  return %y, %p
}
)";
  CHECK(run_chunk(probs, always) == normalize(probs));
}

TEST_CASE("chunk-attention: a causal sliding-window mask becomes is_causal + window, and computes the same") {
  // masked iff j > i or j < i - 2 (what fuse-attention leaves as a tensor: Attention has no window).
  const std::string in = R"(
graph main(%q: f32[1, 2, 12, 4], %k: f32[1, 2, 12, 4], %v: f32[1, 2, 12, 4]) {
  %zero = const i64[] [0]
  %one = const i64[] [1]
  %n = const i64[] [12]
  %w = const i64[] [2]
  %ax1 = const i64[1] [1]
  %ax0 = const i64[1] [0]
  %ninf = const f32[] [-inf]
  %fzero = const f32[] [0.0]
  %r = Range(%zero, %n, %one) : i64[12]
  %rows = Unsqueeze(%r, %ax1) : i64[12, 1]
  %cols = Unsqueeze(%r, %ax0) : i64[1, 12]
  %ahead = Less(%rows, %cols) : bool[12, 12]
  %colsw = Add(%cols, %w) : i64[1, 12]
  %behind = Less(%colsw, %rows) : bool[12, 12]
  %out = Or(%ahead, %behind) : bool[12, 12]
  %bias = Where(%out, %ninf, %fzero) : f32[12, 12]
  %y = Attention(%q, %k, %v, %bias) {scale = 0.5} : f32[1, 2, 12, 4]
  return %y
}
)";
  const std::string expected = R"(
graph main(%q: f32[1, 2, 12, 4], %k: f32[1, 2, 12, 4], %v: f32[1, 2, 12, 4]) {
  %y = ChunkedAttention(%q, %k, %v) {block_k = 4, block_q = 4, is_causal = 1, scale = 0.5, window = 2} : f32[1, 2, 12, 4]
  return %y
}
)";
  passes::ChunkAttentionOptions options;
  options.min_keys = 1;
  options.block_q = 4;
  options.block_k = 4;
  CHECK(run_chunk(in, options) == normalize(expected));

  // Before and after compute the same (reference executor on both).
  std::unique_ptr<Graph> before = parse_ok(in);
  std::unique_ptr<Graph> after = parse_ok(in);
  passes::ChunkAttentionPass pass(options);
  REQUIRE(pass.run(*after).is_ok());
  REQUIRE(infer_graph_types(*after).is_ok());
  const std::vector<Tensor> inputs = {random_tensor({1, 2, 12, 4}, 21), random_tensor({1, 2, 12, 4}, 22),
                                      random_tensor({1, 2, 12, 4}, 23)};
  auto y0 = runtime::ReferenceExecutor().run(*before, inputs);
  auto y1 = runtime::ReferenceExecutor().run(*after, inputs);
  REQUIRE(y0.is_ok());
  REQUIRE(y1.is_ok());
  for (int64_t i = 0; i < (*y0)[0].numel(); ++i)
    CHECK((*y1)[0].get_f64(i) == Approx((*y0)[0].get_f64(i)).margin(1e-5));
}

TEST_CASE("chunk-attention: an unrecognized mask is passed on unchanged") {
  const std::string in = R"(
graph main(%q: f32[1, 2, 6, 4], %k: f32[1, 2, 6, 4], %v: f32[1, 2, 6, 4], %m: bool[1, 1, 6, 6]) {
  %y = Attention(%q, %k, %v, %m) {is_causal = 1} : f32[1, 2, 6, 4]
  return %y
}
)";
  const std::string expected = R"(
graph main(%q: f32[1, 2, 6, 4], %k: f32[1, 2, 6, 4], %v: f32[1, 2, 6, 4], %m: bool[1, 1, 6, 6]) {
  %y = ChunkedAttention(%q, %k, %v, %m) {block_k = 64, block_q = 64, is_causal = 1} : f32[1, 2, 6, 4]
  return %y
}
)";
  passes::ChunkAttentionOptions always;
  always.min_keys = 1;
  CHECK(run_chunk(in, always) == normalize(expected));
}

TEST_CASE("chunk-attention: runs in the -O1 pipeline right after fuse-attention") {
  const std::vector<std::string> o1 = passes::pipeline_for_level(1);
  auto fuse = std::find(o1.begin(), o1.end(), "fuse-attention");
  auto chunk = std::find(o1.begin(), o1.end(), "chunk-attention");
  REQUIRE(fuse != o1.end());
  REQUIRE(chunk != o1.end());
  CHECK(chunk == fuse + 1);
  CHECK(o1.front() == "canonicalize");
}

// ------------------------------------------------------------------------------ block-sparse layouts

TEST_CASE("ChunkedAttention: block-sparse fixed layouts (local + summary blocks) match the naive loop") {
  Problem p;
  p.B = 1, p.Hq = 4, p.Hkv = 2, p.Sq = 70, p.T = 70, p.D = 8, p.Dv = 6;
  p.causal = true;
  p.sparse_block = 8, p.sparse_local = 2, p.sparse_stride = 3;
  check_chunked(p, 8, 8, 31);
  check_chunked(p, 5, 13, 32);  // tiles unrelated to the layout's blocks
  p.sparse_local = 1, p.sparse_stride = 4;
  p.window = 20;  // a window on top of the layout
  check_chunked(p, 16, 16, 33);
  p.window = -1, p.softcap = 2.0, p.Sq = 30;  // fewer queries than keys: rows 0..29
  check_chunked(p, 7, 9, 34);
}

TEST_CASE("ChunkedAttention: sparse attributes are checked") {
  const std::string base = R"(
graph main(%q: f32[1, 1, 32, 4], %k: f32[1, 1, 32, 4], %v: f32[1, 1, 32, 4]) {
  %y = ChunkedAttention(%q, %k, %v) {ATTRS} : f32[1, 1, 32, 4]
  return %y
}
)";
  auto infer_with = [&](const std::string& attrs) {
    std::string text = base;
    text.replace(text.find("ATTRS"), 5, attrs);
    std::unique_ptr<Graph> g = parse_ok(text);
    return infer_graph_types(*g);
  };
  CHECK(infer_with("is_causal = 1, sparse_block = 16, sparse_local = 1, sparse_stride = 2").is_ok());
  Status no_causal = infer_with("sparse_block = 16, sparse_local = 1, sparse_stride = 2");
  REQUIRE_FALSE(no_causal.is_ok());
  CHECK(no_causal.message().find("needs is_causal = 1") != std::string::npos);
  CHECK_FALSE(infer_with("is_causal = 1, sparse_block = 16, sparse_local = 0").is_ok());
  CHECK_FALSE(infer_with("is_causal = 1, sparse_block = 16, sparse_stride = 0").is_ok());
  CHECK_FALSE(infer_with("is_causal = 1, sparse_block = -1").is_ok());
}

namespace {

// Visibility of the fixed layout (b, l, s), causal.
bool layout_visible(int64_t i, int64_t j, int64_t b, int64_t l, int64_t s) {
  return j <= i && (i / b - j / b < l || (j / b) % s == s - 1);
}

struct MaskSpec {
  int64_t S = 64, b = 16, l = 1, s = 2;
  std::string dtype = "bool";       // bool (1 = attend) or f32 (0 / -inf)
  std::string shape;                // "[S, S]" by default
  bool above_diagonal = false;      // also mark keys j > i visible (only right with is_causal = 1)
  bool inverted = false;            // bool values true where masked (fed through Not)
  int64_t flip_i = -1, flip_j = 0;  // one element flipped: no longer a layout
  std::string odd_value;
  int copies = 1;  // the [S, S] values repeated (a mask with a leading dim > 1)            // f32: this value
                   // replaces element (1, 0)
};

std::string mask_values(const MaskSpec& m) {
  std::string out = "[";
  for (int copy = 0; copy < m.copies; ++copy) {
    for (int64_t i = 0; i < m.S; ++i) {
      for (int64_t j = 0; j < m.S; ++j) {
        bool keep = layout_visible(i, j, m.b, m.l, m.s) || (m.above_diagonal && j > i);
        if (i == m.flip_i && j == m.flip_j) keep = !keep;
        if (copy + i + j > 0) out += ", ";
        if (m.dtype == "bool") {
          out += (keep != m.inverted) ? "1" : "0";
        } else if (i == 1 && j == 0 && !m.odd_value.empty()) {
          out += m.odd_value;
        } else {
          out += keep ? "0.0" : "-inf";
        }
      }
    }
  }
  return out + "]";
}

// Attention(q, k, v, mask) over S tokens with the mask as a constant (through Not when inverted).
std::string sparse_graph(const MaskSpec& m, bool is_causal) {
  const std::string S = std::to_string(m.S);
  const std::string qkv = "f32[1, 2, " + S + ", 8]";
  const std::string shape = m.shape.empty() ? "[" + S + ", " + S + "]" : m.shape;
  std::string text = "graph main(%q: " + qkv + ", %k: " + qkv + ", %v: " + qkv + ") {\n";
  text += "  %m = const " + m.dtype + shape + " " + mask_values(m) + "\n";
  std::string mask = "%m";
  if (m.inverted) {
    text += "  %keep = Not(%m) : bool" + shape + "\n";
    mask = "%keep";
  }
  text += "  %y = Attention(%q, %k, %v, " + mask + ")" + (is_causal ? " {is_causal = 1}" : "") + " : " + qkv +
          "\n";
  text += "  return %y\n}\n";
  return text;
}

std::string sparse_expected(int64_t S, int64_t b, int64_t l, int64_t s) {
  const std::string qkv = "f32[1, 2, " + std::to_string(S) + ", 8]";
  return "graph main(%q: " + qkv + ", %k: " + qkv + ", %v: " + qkv + ") {\n" +
         fmt::format(
             "  %y = ChunkedAttention(%q, %k, %v) {{block_k = {0}, block_q = {0}, is_causal = 1, "
             "sparse_block = {0}, sparse_local = {1}, sparse_stride = {2}}} : ",
             b, l, s) +
         qkv + "\n  return %y\n}\n";
}

// Before and after the pass compute the same (reference executor on both).
void check_same_function(const std::string& text) {
  std::unique_ptr<Graph> before = parse_ok(text);
  std::unique_ptr<Graph> after = parse_ok(text);
  passes::ChunkAttentionPass pass;
  REQUIRE(pass.run(*after).is_ok());
  REQUIRE(infer_graph_types(*after).is_ok());
  const Shape shape = before->inputs()[0]->type().static_shape().value();
  const std::vector<Tensor> inputs = {random_tensor(shape, 61), random_tensor(shape, 62),
                                      random_tensor(shape, 63)};
  auto y0 = runtime::ReferenceExecutor().run(*before, inputs);
  auto y1 = runtime::ReferenceExecutor().run(*after, inputs);
  REQUIRE(y0.is_ok());
  REQUIRE(y1.is_ok());
  double worst = 0.0;
  for (int64_t i = 0; i < (*y0)[0].numel(); ++i)
    worst = std::max(worst, std::abs((*y1)[0].get_f64(i) - (*y0)[0].get_f64(i)));
  CHECK(worst <= 1e-5);
}

}  // namespace

TEST_CASE("chunk-attention: a constant bool mask equal to a fixed layout becomes sparse ChunkedAttention") {
  MaskSpec m;  // S 64, blocks of 16: diagonal + every odd block
  const std::string in = sparse_graph(m, /*is_causal=*/false);
  CHECK(run_chunk(in) == normalize(sparse_expected(64, 16, 1, 2)));
  check_same_function(in);
  // With is_causal = 1 the mask's upper triangle does not matter.
  m.above_diagonal = true;
  CHECK(run_chunk(sparse_graph(m, true)) == normalize(sparse_expected(64, 16, 1, 2)));
  // fuse-attention's form of masked_fill(~mask): Not of a constant that is true where masked.
  m.above_diagonal = false;
  m.inverted = true;
  m.S = 192, m.b = 32, m.l = 2, m.s = 3;
  CHECK(run_chunk(sparse_graph(m, false)) == normalize(sparse_expected(192, 32, 2, 3)));
}

TEST_CASE("chunk-attention: a constant 0/-inf float mask [1, 1, S, S] equal to a fixed layout") {
  MaskSpec m;
  m.dtype = "f32";
  m.S = 96, m.b = 16, m.l = 2, m.s = 3;
  m.shape = "[1, 1, 96, 96]";
  const std::string in = sparse_graph(m, false);
  CHECK(run_chunk(in) == normalize(sparse_expected(96, 16, 2, 3)));
  check_same_function(in);
  // No summary block within reach (stride beyond the blocks): local blocks only.
  m.l = 3, m.s = 100;
  CHECK(run_chunk(sparse_graph(m, false)) == normalize(sparse_expected(96, 16, 3, 6)));
}

TEST_CASE("chunk-attention: masks that are not exactly a fixed layout are left alone") {
  // Each graph is small (fewer than min_keys keys), so "left alone" means: the same Attention, same mask.
  MaskSpec flipped;
  flipped.flip_i = 40, flipped.flip_j = 3;  // one key of an empty block made visible
  CHECK(run_chunk(sparse_graph(flipped, false)) == normalize(sparse_graph(flipped, false)));
  MaskSpec hole = flipped;
  hole.flip_i = 50, hole.flip_j = 50;  // the diagonal itself masked
  CHECK(run_chunk(sparse_graph(hole, false)) == normalize(sparse_graph(hole, false)));
  MaskSpec upper;
  upper.above_diagonal = true;  // not causal and is_causal = 0: keys ahead are visible
  CHECK(run_chunk(sparse_graph(upper, false)) == normalize(sparse_graph(upper, false)));
  MaskSpec bias;
  bias.dtype = "f32";
  bias.odd_value = "-1.5";  // a real additive bias, not 0 / -inf
  CHECK(run_chunk(sparse_graph(bias, false)) == normalize(sparse_graph(bias, false)));
  MaskSpec dense;
  dense.l = 4;  // every block local: plain causal, nothing to skip
  CHECK(run_chunk(sparse_graph(dense, false)) == normalize(sparse_graph(dense, false)));
  MaskSpec odd;
  odd.S = 40, odd.b = 8, odd.l = 1, odd.s = 2;  // blocks of 8: no b in 16..256 divides 40
  CHECK(run_chunk(sparse_graph(odd, false)) == normalize(sparse_graph(odd, false)));
  // A mask given as a graph input instead of a constant.
  const std::string input_mask = R"(
graph main(%q: f32[1, 2, 64, 8], %k: f32[1, 2, 64, 8], %v: f32[1, 2, 64, 8], %m: bool[64, 64]) {
  %y = Attention(%q, %k, %v, %m) : f32[1, 2, 64, 8]
  return %y
}
)";
  CHECK(run_chunk(input_mask) == normalize(input_mask));
  // A per-head mask [1, 2, S, S] is not the broadcast form the pass reads.
  MaskSpec per_head;
  per_head.shape = "[2, 64, 64]";
  per_head.copies = 2;
  const std::string per_head_text = sparse_graph(per_head, false);
  CHECK(run_chunk(per_head_text) == normalize(per_head_text));
}
