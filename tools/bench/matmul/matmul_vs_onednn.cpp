// MatMul through seqrun (one-node graph, planned executor, CPU backend) vs a standalone oneDNN matmul
// primitive on the same shapes: GFLOP/s of each and their ratio. The standalone primitive is oneDNN at its
// best: created once, weights reordered once into the layout it prefers, only execute() timed.
// Usage: seqrun-bench-matmul [--threads N] [--repeat N]   (median of N timed runs after warm-up)
#include <dnnl.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "ir/graph.h"
#include "ir/infer.h"
#include "runtime/session.h"
#include "tools/bench/bench_util.h"

using namespace seqrun;
using namespace seqrun::bench;

namespace {

struct Shape3 {
  int64_t m, k, n;
  const char* what;
};

std::vector<float> random_floats(size_t n, unsigned seed) {
  std::vector<float> v(n);
  fill_uniform(v.data(), n, seed);
  return v;
}

double onednn_ms(const Shape3& s, const std::vector<float>& a, const std::vector<float>& b, int repeat) {
  using tag = dnnl::memory::format_tag;
  using dt = dnnl::memory::data_type;
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  dnnl::memory::desc a_md({s.m, s.k}, dt::f32, tag::ab);
  dnnl::memory::desc b_any({s.k, s.n}, dt::f32, tag::any);
  dnnl::memory::desc c_md({s.m, s.n}, dt::f32, tag::ab);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_any, c_md), eng);
  dnnl::memory a_mem(a_md, eng, const_cast<float*>(a.data()));
  dnnl::memory b_plain({{s.k, s.n}, dt::f32, tag::ab}, eng, const_cast<float*>(b.data()));
  dnnl::memory b_mem(pd.weights_desc(), eng);
  dnnl::reorder(b_plain, b_mem).execute(strm, b_plain, b_mem);
  dnnl::memory c_mem(c_md, eng);
  dnnl::matmul prim(pd);
  auto run = [&] {
    prim.execute(strm, {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}});
    strm.wait();
  };
  return median_ms(run, repeat, 3);
}

double seqrun_ms(const Shape3& s, const std::vector<float>& a, const std::vector<float>& b, int repeat,
                 std::string* label) {
  auto g = std::make_unique<Graph>("matmul");
  Value* x = g->add_input("x", TensorType::from_shape(DType::f32, {s.m, s.k}));
  Value* w = g->add_constant("w", Tensor::from_vector<float>({s.k, s.n}, b));
  Node* mm = g->add_node("MatMul", {x, w}, 1, {}, {"y"});
  g->set_outputs({mm->output(0)});
  if (!infer_graph_types(*g)) std::abort();
  runtime::SessionOptions options;
  options.opt_level = 0;
  auto session = runtime::Session::from_graph(std::move(g), options);
  if (!session) {
    std::fprintf(stderr, "seqrun-bench-matmul: %s\n", session.status().message().c_str());
    std::exit(1);
  }
  std::vector<Tensor> inputs = {Tensor::from_vector<float>({s.m, s.k}, a)};
  std::vector<Tensor> outputs(1);
  auto run = [&] {
    Status st = (*session)->run_into(inputs, outputs);
    if (!st) {
      std::fprintf(stderr, "seqrun-bench-matmul: %s\n", st.message().c_str());
      std::exit(1);
    }
  };
  double ms = median_ms(run, repeat, 3);
  auto placement = (*session)->placement({runtime::InputSpec{DType::f32, {s.m, s.k}}});
  if (placement && !placement->empty()) *label = placement->front().kernel;
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, repeat = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--threads") == 0) threads = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--repeat") == 0) repeat = std::max(1, std::atoi(argv[i + 1]));
  }
  backends::set_cpu_threads(threads);
  const Shape3 shapes[] = {
      {1024, 256, 768, "(a) qkv projection"},
      {1024, 256, 1024, "(a) MLP up"},
      {1024, 1024, 256, "(a) MLP down"},
      {512, 768, 2304, "(c) qkv projection"},
      {512, 768, 3072, "(c) MLP up"},
      {512, 3072, 768, "(c) MLP down"},
      {512, 512, 512, "512^3"},
  };
  std::printf("threads %d, median of %d runs\n", backends::cpu_threads(), repeat);
  std::printf(
      "| shape (m x k x n) | what | oneDNN GFLOP/s | seqrun GFLOP/s | seqrun/oneDNN | seqrun kernel |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (const Shape3& s : shapes) {
    std::vector<float> a = random_floats(static_cast<size_t>(s.m * s.k), 1);
    std::vector<float> b = random_floats(static_cast<size_t>(s.k * s.n), 2);
    double flops = 2.0 * static_cast<double>(s.m) * static_cast<double>(s.k) * static_cast<double>(s.n);
    std::string label = "?";
    double t_dnnl = onednn_ms(s, a, b, repeat);
    double t_seq = seqrun_ms(s, a, b, repeat, &label);
    double g_dnnl = flops / t_dnnl / 1e6, g_seq = flops / t_seq / 1e6;
    std::printf("| %lldx%lldx%lld | %s | %.1f | %.1f | %.2f | %s |\n", static_cast<long long>(s.m),
                static_cast<long long>(s.k), static_cast<long long>(s.n), s.what, g_dnnl, g_seq,
                g_seq / g_dnnl, label.c_str());
  }
  return 0;
}
