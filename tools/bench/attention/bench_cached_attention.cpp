// Attention kernel micro-benchmarks on the CPU backend:
//   decode  CachedAttention decode steps (T = 1) vs context length P: median step time and GB/s of K/V
//           read, next to this machine's read bandwidth (a parallel sum over 256 MiB, the same threads).
//           The caches are updated in place (new caches = old caches' memory, as a decode loop runs them)
//           and cold: enough independent caches ("layers") to cover --cold-mib are stepped in turn, the time
//           per step is the pass time / layers.
//   sparse  ChunkedAttention, causal, dense vs the block-sparse "fixed" layout (sparse_block/local/stride):
//           median time of each and the time ratio next to the ratio of non-empty blocks.
// Every kernel comes from the CPU backend's factories (the label printed is the one that ran).
// Usage: seqrun-bench-cached-attention [--threads N] [--repeat N] [--cold-mib MiB] [--parts decode,sparse]
//                                      [--contexts 1024,4096,16384] [--seqs 4096,16384] [--isa avx512|avx2]
// (--isa avx2: the attention kernels' AVX2 paths even where the CPU has AVX-512.)
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_factories.h"
#include "ir/graph.h"
#include "ir/infer.h"
#include "tools/bench/bench_util.h"

using namespace seqrun;
using namespace seqrun::bench;

namespace {

std::vector<int64_t> parse_list(const char* text) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::atoll(item.c_str()));
  return out;
}

struct Buffer {
  float* data = nullptr;
  size_t floats = 0;
  explicit Buffer(size_t n) : floats(n) {
    data = static_cast<float*>(std::aligned_alloc(64, std::max<size_t>(64, (n * 4 + 63) / 64 * 64)));
    std::memset(data, 0, n * 4);
  }
  ~Buffer() { std::free(data); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

// Median read bandwidth (GB/s) of a parallel sum over `mib` MiB of doubles.
double read_bandwidth_gbs(int threads, long mib, int repeat) {
  const size_t n = static_cast<size_t>(mib) * (1 << 20) / sizeof(double);
  std::vector<double> a(n, 1.0);
  volatile double sink = 0.0;
  const double ms = median_ms(
      [&] {
        double s = 0.0;
#pragma omp parallel for reduction(+ : s) num_threads(threads) schedule(static)
        for (size_t i = 0; i < n; ++i) s += a[i];
        sink = sink + s;
      },
      repeat, 2);
  return static_cast<double>(n * sizeof(double)) / ms / 1e6;
}

// A kernel for one node of `graph`, created by the CPU backend, prepared, with its workspace.
struct NodeKernel {
  std::unique_ptr<Graph> graph;
  std::unique_ptr<backends::Kernel> kernel;
  backends::KernelInfo info;
  void* workspace = nullptr;
  ~NodeKernel() { std::free(workspace); }
};

std::unique_ptr<NodeKernel> make_kernel(std::unique_ptr<Graph> graph, int threads) {
  if (!infer_graph_types(*graph)) {
    std::fprintf(stderr, "seqrun-bench-cached-attention: type inference failed\n");
    std::exit(1);
  }
  auto nk = std::make_unique<NodeKernel>();
  nk->graph = std::move(graph);
  const Node* node = nk->graph->nodes().back();
  nk->info.node = node;
  nk->info.threads = threads;
  for (const Value* v : node->inputs())
    nk->info.inputs.push_back({v->type().dtype(), *v->type().static_shape(), nullptr});
  for (const Value* v : node->outputs())
    nk->info.outputs.push_back({v->type().dtype(), *v->type().static_shape(), nullptr});
  nk->kernel = backends::cpu_backend().kernels().create(nk->info);
  if (!nk->kernel || !nk->kernel->prepare(nk->info)) {
    std::fprintf(stderr, "seqrun-bench-cached-attention: no kernel for %s\n", node->describe().c_str());
    std::exit(1);
  }
  nk->workspace =
      std::aligned_alloc(64, (std::max<size_t>(nk->kernel->workspace_bytes(), 64) + 63) / 64 * 64);
  return nk;
}

void run_or_die(NodeKernel& nk, const std::vector<backends::TensorArg>& in,
                const std::vector<backends::TensorArg>& out) {
  Status st = nk.kernel->run(in, out, nk.workspace);
  if (!st) {
    std::fprintf(stderr, "seqrun-bench-cached-attention: %s\n", st.message().c_str());
    std::exit(1);
  }
}

// ---------------------------------------------------------------------------------------------- decode

struct DecodeShape {
  int64_t q_heads, kv_heads, head_size;
};

void bench_decode(int threads, int repeat, long cold_mib, const std::vector<int64_t>& contexts) {
  const DecodeShape shapes[] = {{12, 12, 64}, {32, 8, 64}};
  std::printf(
      "\n## decode: CachedAttention, T = 1, batch 1, caches updated in place, cold (>= %ld MiB per pass)\n\n",
      cold_mib);
  std::printf(
      "| Hq / Hkv x D | context P | step ms | K/V read MB | GB/s | plain read GB/s | %% of plain read | "
      "layers | kernel |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  for (const DecodeShape& s : shapes) {
    for (int64_t P : contexts) {
      const int64_t C = P + 1, D = s.head_size;
      auto g = std::make_unique<Graph>("decode");
      std::vector<Value*> ins = {
          g->add_input("q", TensorType::from_shape(DType::f32, {1, s.q_heads, 1, D})),
          g->add_input("k", TensorType::from_shape(DType::f32, {1, s.kv_heads, 1, D})),
          g->add_input("v", TensorType::from_shape(DType::f32, {1, s.kv_heads, 1, D})),
          g->add_input("kc", TensorType::from_shape(DType::f32, {1, s.kv_heads, C, D})),
          g->add_input("vc", TensorType::from_shape(DType::f32, {1, s.kv_heads, C, D})),
          g->add_input("pos", TensorType::from_shape(DType::i64, {1}))};
      Node* n = g->add_node("CachedAttention", ins, 3, {}, {"y", "kc2", "vc2"});
      g->set_outputs({n->output(0), n->output(1), n->output(2)});
      auto nk = make_kernel(std::move(g), threads);
      const size_t cache_floats = static_cast<size_t>(s.kv_heads * C * D);
      const double kv_bytes = 2.0 * s.kv_heads * (P + 1) * D * 4;
      const int layers =
          static_cast<int>(std::max<double>(1.0, cold_mib * 1048576.0 / (2.0 * cache_floats * 4)));
      std::vector<std::unique_ptr<Buffer>> caches;
      for (int l = 0; l < 2 * layers; ++l) {
        caches.push_back(std::make_unique<Buffer>(cache_floats));
        fill_uniform(caches.back()->data, cache_floats, 7 + l);
      }
      Buffer q(static_cast<size_t>(s.q_heads * D)), k(static_cast<size_t>(s.kv_heads * D)),
          v(static_cast<size_t>(s.kv_heads * D)), y(static_cast<size_t>(s.q_heads * D));
      fill_uniform(q.data, q.floats, 1);
      fill_uniform(k.data, k.floats, 2);
      fill_uniform(v.data, v.floats, 3);
      int64_t position = P;
      std::vector<backends::TensorArg> in = nk->info.inputs, out = nk->info.outputs;
      in[0].data = q.data;
      in[1].data = k.data;
      in[2].data = v.data;
      in[5].data = &position;
      out[0].data = y.data;
      auto step_pass = [&] {
        for (int l = 0; l < layers; ++l) {
          in[3].data = out[1].data = caches[2 * l]->data;
          in[4].data = out[2].data = caches[2 * l + 1]->data;
          run_or_die(*nk, in, out);
        }
      };
      // The roof: a parallel sum over exactly the bytes the steps read (rows 0..P of every cache), timed
      // alternately with the steps so that both see the same machine load.
      volatile float sink = 0.0f;
      auto read_pass = [&] {
        for (int l = 0; l < 2 * layers; ++l) {
          const float* c = caches[l]->data;
          float total = 0.0f;
#pragma omp parallel for reduction(+ : total) num_threads(threads) schedule(static)
          for (int64_t h = 0; h < s.kv_heads; ++h) total += sum_floats_avx2(c + h * C * D, (P + 1) * D);
          sink = sink + total;
        }
      };
      step_pass();
      read_pass();
      std::vector<double> step_ms, read_ms;
      for (int r = 0; r < repeat; ++r) {
        step_ms.push_back(median_ms(step_pass, 1, 0) / layers);
        read_ms.push_back(median_ms(read_pass, 1, 0) / layers);
      }
      const double ms = upper_median(step_ms), roof_ms = upper_median(read_ms);
      std::printf("| %lld / %lld x %lld | %lld | %.4f | %.2f | %.1f | %.1f | %.0f%% | %d | %s |\n",
                  static_cast<long long>(s.q_heads), static_cast<long long>(s.kv_heads),
                  static_cast<long long>(D), static_cast<long long>(P), ms, kv_bytes / 1e6,
                  kv_bytes / ms / 1e6, kv_bytes / roof_ms / 1e6, 100.0 * roof_ms / ms, layers,
                  nk->kernel->label().c_str());
      std::fflush(stdout);
    }
  }
}

// ---------------------------------------------------------------------------------------------- sparse

struct Layout {
  int64_t block, local, stride;  // block 0: dense causal
};

// Non-empty blocks of the layout over S tokens (in blocks of `block`; the causal diagonal counts).
int64_t nonempty_blocks(int64_t S, const Layout& l, int64_t block) {
  const int64_t nb = (S + block - 1) / block;
  int64_t count = 0;
  for (int64_t qb = 0; qb < nb; ++qb) {
    for (int64_t kb = 0; kb <= qb; ++kb) {
      if (l.block == 0 || qb - kb < l.local || kb % l.stride == l.stride - 1) ++count;
    }
  }
  return count;
}

void bench_sparse(int threads, int repeat, const std::vector<int64_t>& seqs) {
  const int64_t heads = 8, D = 64;
  const Layout layouts[] = {{0, 0, 0}, {64, 4, 16}, {64, 2, 8}, {128, 2, 16}};
  std::printf(
      "\n## sparse: ChunkedAttention, causal, batch 1, %lld heads x %lld, dense vs block-sparse fixed "
      "layouts\n\n",
      static_cast<long long>(heads), static_cast<long long>(D));
  std::printf(
      "| S | layout (block / local / stride) | ms (median) | time / dense | non-empty blocks / dense | "
      "kernel |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (int64_t S : seqs) {
    Buffer q(static_cast<size_t>(heads * S * D)), k(q.floats), v(q.floats), y(q.floats);
    fill_uniform(q.data, q.floats, 11);
    fill_uniform(k.data, k.floats, 12);
    fill_uniform(v.data, v.floats, 13);
    // All layouts' kernels first, then rounds that time each layout once in turn: the ratios compare runs
    // that saw the same machine load.
    const int runs = S > 8192 ? std::min(repeat, 5) : repeat;
    std::vector<std::unique_ptr<NodeKernel>> kernels;
    for (const Layout& l : layouts) {
      auto g = std::make_unique<Graph>("sparse");
      std::vector<Value*> ins;
      for (const char* name : {"q", "k", "v"})
        ins.push_back(g->add_input(name, TensorType::from_shape(DType::f32, {1, heads, S, D})));
      std::map<std::string, Attribute> attrs;
      attrs["is_causal"] = Attribute(int64_t{1});
      if (l.block > 0) {
        attrs["sparse_block"] = Attribute(l.block);
        attrs["sparse_local"] = Attribute(l.local);
        attrs["sparse_stride"] = Attribute(l.stride);
      }
      Node* n = g->add_node("ChunkedAttention", ins, 1, attrs, {"y"});
      g->set_outputs({n->output(0)});
      kernels.push_back(make_kernel(std::move(g), threads));
    }
    std::vector<std::vector<double>> ms(kernels.size());
    for (int r = 0; r <= runs; ++r) {  // round 0 warms up
      for (size_t i = 0; i < kernels.size(); ++i) {
        std::vector<backends::TensorArg> in = kernels[i]->info.inputs, out = kernels[i]->info.outputs;
        in[0].data = q.data;
        in[1].data = k.data;
        in[2].data = v.data;
        out[0].data = y.data;
        const double t = median_ms([&] { run_or_die(*kernels[i], in, out); }, 1, 0);
        if (r > 0) ms[i].push_back(t);
      }
    }
    double dense_ms = 0.0;
    for (size_t i = 0; i < kernels.size(); ++i) {
      const Layout& l = layouts[i];
      const double median = upper_median(ms[i]);
      if (l.block == 0) dense_ms = median;
      // Both counted in blocks of the sparse layout's size (64 for dense), so the ratio is the work ratio.
      const int64_t block = l.block > 0 ? l.block : 64;
      const double block_ratio = static_cast<double>(nonempty_blocks(S, l, block)) /
                                 static_cast<double>(nonempty_blocks(S, Layout{0, 0, 0}, block));
      const std::string name = l.block == 0 ? std::string("dense causal")
                                            : fmt::format("{} / {} / {}", l.block, l.local, l.stride);
      std::printf("| %lld | %s | %.1f | %.3f | %.3f | %s |\n", static_cast<long long>(S), name.c_str(),
                  median, median / dense_ms, block_ratio, kernels[i]->kernel->label().c_str());
    }
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, repeat = 15;
  long cold_mib = 512;
  std::string parts = "decode,sparse";
  std::vector<int64_t> contexts = {1024, 4096, 16384};
  std::vector<int64_t> seqs = {4096, 16384};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--threads") == 0) threads = std::max(1, std::atoi(argv[i + 1]));
    if (std::strcmp(argv[i], "--repeat") == 0) repeat = std::max(1, std::atoi(argv[i + 1]));
    if (std::strcmp(argv[i], "--cold-mib") == 0) cold_mib = std::max(0L, std::atol(argv[i + 1]));
    if (std::strcmp(argv[i], "--parts") == 0) parts = argv[i + 1];
    if (std::strcmp(argv[i], "--contexts") == 0) contexts = parse_list(argv[i + 1]);
    if (std::strcmp(argv[i], "--seqs") == 0) seqs = parse_list(argv[i + 1]);
    if (std::strcmp(argv[i], "--isa") == 0)
      backends::cpu::set_attention_avx512(std::strcmp(argv[i + 1], "avx2") != 0);
  }
  backends::set_cpu_threads(threads);
  const double bandwidth = read_bandwidth_gbs(threads, 256, repeat);
  std::printf("threads %d, median of %d runs; read bandwidth (parallel sum over 256 MiB) %.1f GB/s\n",
              threads, repeat, bandwidth);
  if (parts.find("decode") != std::string::npos) bench_decode(threads, repeat, cold_mib, contexts);
  if (parts.find("sparse") != std::string::npos) bench_sparse(threads, repeat, seqs);
  return 0;
}
