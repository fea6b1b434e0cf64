// MixedChunkAttention (GAU/FLASH) micro-benchmark: the CPU kernel (backends/cpu/mixed_chunk_attention.cpp)
// against the reference kernel, both on one-node graphs run by runtime::Session (cpu backend vs the
// reference-only cpu backend), median wall time of each.
//   prefill  the sequence form over T tokens (causal with bias, and non-causal), batch 1
//   decode   one step (T = 1) of the step form at positions P (mid-chunk, and the token that completes a
//            chunk, which folds it into the state): both through a Session (state copied in and out), and
//            the CPU kernel called directly with its state outputs over its inputs, as a decode loop runs it
// Prints the largest relative difference between the two results as a sanity check (not a test).
// Usage: seqrun-bench-mixed-chunk [--threads N] [--repeat N] [--ref-repeat N] [--tokens T] [--chunk C]
//                                 [--sq Sq] [--sl Sl] [--width E]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "ir/infer.h"
#include "ir/text.h"
#include "runtime/session.h"
#include "tools/bench/bench_util.h"

using namespace seqrun;
using namespace seqrun::bench;

namespace {

struct Sizes {
  int64_t T = 4096, C = 256, sq = 128, sl = 128, E = 1536;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "seqrun-bench-mixed-chunk: %s\n", what.c_str());
  std::exit(1);
}

Tensor random_tensor(const Shape& shape, unsigned seed, float amplitude = 1.0f) {
  Tensor t = Tensor::empty(DType::f32, shape);
  fill_uniform(t.data<float>(), static_cast<size_t>(t.numel()), seed, amplitude);
  return t;
}

std::string f32(int64_t a, int64_t b, int64_t c = -1) {
  return "f32[" + std::to_string(a) + ", " + std::to_string(b) + (c >= 0 ? ", " + std::to_string(c) : "") +
         "]";
}

// One node over T tokens with bias; `step` adds the state inputs and outputs.
std::string graph_text(const Sizes& s, int64_t T, bool causal, bool step) {
  std::string text = "graph main(%qq: " + f32(1, T, s.sq) + ", %qk: " + f32(1, T, s.sq) +
                     ", %lq: " + f32(1, T, s.sl) + ", %lk: " + f32(1, T, s.sl) + ", %v: " + f32(1, T, s.E) +
                     ", %bias: " + f32(s.C, s.C);
  if (step) {
    text += ", %ls: " + f32(1, s.sl, s.E) + ", %cq: " + f32(1, s.C, s.sq) + ", %cl: " + f32(1, s.C, s.sl) +
            ", %cv: " + f32(1, s.C, s.E) + ", %pos: i64[]";
  }
  const std::string outs = step ? "%y, %nls, %ncq, %ncl, %ncv" : "%y";
  text += ") {\n  " + outs + " = MixedChunkAttention(%qq, %qk, %lq, %lk, %v, %bias" +
          (step ? ", %ls, %cq, %cl, %cv, %pos" : "") + ") {chunk_size = " + std::to_string(s.C) +
          ", causal = " + (causal ? "1" : "0") + "} : " + f32(1, T, s.E);
  if (step)
    text += ", " + f32(1, s.sl, s.E) + ", " + f32(1, s.C, s.sq) + ", " + f32(1, s.C, s.sl) + ", " +
            f32(1, s.C, s.E);
  return text + "\n  return " + outs + "\n}\n";
}

std::unique_ptr<runtime::Session> session_for(const std::string& text, backends::Backend& backend,
                                              int threads) {
  auto graph = parse_graph(text);
  if (!graph.is_ok()) die(graph.status().message());
  runtime::SessionOptions options;
  options.passes = std::vector<std::string>{};
  options.threads = threads;
  options.backends = {&backend};
  auto session = runtime::Session::from_graph(std::move(graph).value(), options);
  if (!session.is_ok()) die(session.status().message());
  return std::move(session).value();
}

std::string kernel_label(const runtime::Session& session, const std::vector<Tensor>& inputs) {
  auto placement = session.placement(runtime::input_specs_of(inputs));
  if (!placement.is_ok()) die(placement.status().message());
  for (const auto& p : *placement) {
    if (p.op == "MixedChunkAttention") return p.kernel;
  }
  return "?";
}

// Runs into `outputs` (reused from the previous run: no allocation or page faults in the timed loop).
void run_or_die(const runtime::Session& session, const std::vector<Tensor>& inputs,
                std::vector<Tensor>& outputs) {
  Status st = session.run_into(inputs, outputs);
  if (!st.is_ok()) die(st.message());
}

double max_relative_difference(const Tensor& a, const Tensor& b) {
  double worst = 0.0, scale = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    worst = std::max(worst, std::fabs(a.get_f64(i) - b.get_f64(i)));
    scale = std::max(scale, std::fabs(b.get_f64(i)));
  }
  return scale == 0.0 ? worst : worst / scale;
}

std::vector<Tensor> token_inputs(const Sizes& s, int64_t T, unsigned seed) {
  // quad_k scaled so that qs·q·k (qs = 1/C) spreads around the relu's knee instead of sitting at ~0.
  return {random_tensor({1, T, s.sq}, seed),     random_tensor({1, T, s.sq}, seed + 1, 16.0f),
          random_tensor({1, T, s.sl}, seed + 2), random_tensor({1, T, s.sl}, seed + 3),
          random_tensor({1, T, s.E}, seed + 4),  random_tensor({s.C, s.C}, seed + 5, 0.1f)};
}

void bench_prefill(const Sizes& s, int threads, int repeat, int ref_repeat) {
  std::printf("\n## prefill: sequence form, T = %ld, C = %ld, Sq = %ld, Sl = %ld, E = %ld, batch 1, bias\n\n",
              static_cast<long>(s.T), static_cast<long>(s.C), static_cast<long>(s.sq),
              static_cast<long>(s.sl), static_cast<long>(s.E));
  std::printf("| form | reference ms | cpu ms | speedup | cpu GFLOP/s | max rel diff | cpu kernel |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (bool causal : {true, false}) {
    const std::string text = graph_text(s, s.T, causal, false);
    const std::vector<Tensor> in = token_inputs(s, s.T, 11);
    auto cpu = session_for(text, backends::cpu_backend(), threads);
    auto ref = session_for(text, backends::cpu_reference_backend(), threads);
    std::vector<Tensor> y_cpu, y_ref;
    const double cpu_ms = median_ms([&] { run_or_die(*cpu, in, y_cpu); }, repeat, 1);
    const double ref_ms = median_ms([&] { run_or_die(*ref, in, y_ref); }, ref_repeat, 0);
    // Useful flops: quadratic 2·keys·(Sq + E) per token (keys: (C + 1) / 2 on average causal, C otherwise),
    // linear 2·Sl·E per token for lin_q·S plus 2·Sl·E per token folded into S.
    const double keys = causal ? (s.C + 1) / 2.0 : static_cast<double>(s.C);
    const double flops = s.T * (2.0 * keys * (s.sq + s.E) + 4.0 * s.sl * s.E);
    std::printf("| %s | %.1f | %.2f | %.0fx | %.1f | %.1e | %s |\n", causal ? "causal" : "non-causal", ref_ms,
                cpu_ms, ref_ms / cpu_ms, flops / cpu_ms / 1e6, max_relative_difference(y_cpu[0], y_ref[0]),
                kernel_label(*cpu, in).c_str());
  }
}

void bench_decode(const Sizes& s, int threads, int repeat, int ref_repeat) {
  std::printf("\n## decode: step form, T = 1, C = %ld, Sq = %ld, Sl = %ld, E = %ld, batch 1\n\n",
              static_cast<long>(s.C), static_cast<long>(s.sq), static_cast<long>(s.sl),
              static_cast<long>(s.E));
  std::printf(
      "| position P | reference ms | cpu ms (session) | cpu ms (kernel, in place) | max rel diff |\n");
  std::printf("|---|---|---|---|---|\n");
  const std::string text = graph_text(s, 1, true, true);
  auto cpu = session_for(text, backends::cpu_backend(), threads);
  auto ref = session_for(text, backends::cpu_reference_backend(), threads);
  for (int64_t P : {s.T + s.C / 2, s.T + s.C - 1}) {
    std::vector<Tensor> in = token_inputs(s, 1, 21);
    in.push_back(random_tensor({1, s.sl, s.E}, 31));
    in.push_back(random_tensor({1, s.C, s.sq}, 32, 16.0f));
    in.push_back(random_tensor({1, s.C, s.sl}, 33));
    in.push_back(random_tensor({1, s.C, s.E}, 34));
    in.push_back(Tensor::scalar<int64_t>(P));
    if (kernel_label(*cpu, in) != "avx2:mixed_chunk_attention")
      die("the cpu session did not take the kernel");
    std::vector<Tensor> y_cpu, y_ref;
    const double cpu_ms = median_ms([&] { run_or_die(*cpu, in, y_cpu); }, repeat * 20, 1);
    const double ref_ms = median_ms([&] { run_or_die(*ref, in, y_ref); }, ref_repeat * 5, 1);

    // The kernel itself, state outputs over the state inputs (copies of them: the run changes them).
    auto graph = parse_graph(text);
    if (!graph.is_ok() || !infer_graph_types(**graph).is_ok()) die("decode graph");
    backends::KernelInfo info;
    info.node = (*graph)->nodes()[0];
    info.threads = threads;
    for (const Tensor& t : in) info.inputs.push_back({t.dtype(), t.shape(), nullptr});
    for (const Value* v : info.node->outputs())
      info.outputs.push_back({DType::f32, *v->type().static_shape(), nullptr});
    auto kernel = backends::cpu_backend().kernels().create(info);
    if (!kernel || !kernel->prepare(info).is_ok()) die("no cpu kernel for the decode step");
    void* workspace =
        std::aligned_alloc(64, (std::max<size_t>(kernel->workspace_bytes(), 64) + 63) / 64 * 64);
    std::vector<Tensor> state;
    for (int i = 6; i <= 9; ++i) state.push_back(in[i].clone());
    Tensor y = Tensor::empty(DType::f32, {1, 1, s.E});
    std::vector<backends::TensorArg> ins = info.inputs, outs = info.outputs;
    for (size_t i = 0; i < in.size(); ++i) ins[i].data = const_cast<void*>(in[i].raw());
    for (int i = 6; i <= 9; ++i) ins[i].data = state[i - 6].raw();
    outs[0].data = y.raw();
    for (int o = 1; o <= 4; ++o) outs[o].data = ins[o + 5].data;
    // Completing a chunk folds it into the state in place: rerunning then sees another state, which costs
    // the same, so the repeated runs time the same work.
    const double kernel_ms = median_ms(
        [&] {
          if (!kernel->run(ins, outs, workspace).is_ok()) die("decode step failed");
        },
        repeat * 20, 1);
    std::free(workspace);
    std::printf("| %ld%s | %.3f | %.4f | %.4f | %.1e |\n", static_cast<long>(P),
                (P + 1) % s.C == 0 ? " (completes a chunk)" : "", ref_ms, cpu_ms, kernel_ms,
                max_relative_difference(y_cpu[0], y_ref[0]));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Sizes s;
  int threads = 2, repeat = 5, ref_repeat = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const long value = std::atol(argv[i + 1]);
    if (flag == "--threads") {
      threads = static_cast<int>(value);
    } else if (flag == "--repeat") {
      repeat = static_cast<int>(value);
    } else if (flag == "--ref-repeat") {
      ref_repeat = static_cast<int>(value);
    } else if (flag == "--tokens") {
      s.T = value;
    } else if (flag == "--chunk") {
      s.C = value;
    } else if (flag == "--sq") {
      s.sq = value;
    } else if (flag == "--sl") {
      s.sl = value;
    } else if (flag == "--width") {
      s.E = value;
    } else {
      die("unknown flag " + flag);
    }
  }
  if (threads < 1 || repeat < 1 || ref_repeat < 1 || s.T < 1 || s.C < 1 || s.sq < 1 || s.sl < 1 || s.E < 1)
    die("every size, --threads and the repeat counts must be positive");
  backends::set_cpu_threads(threads);
  std::printf("# seqrun-bench-mixed-chunk: %d threads, median of %d (reference: %d) runs\n", threads, repeat,
              ref_repeat);
  bench_prefill(s, threads, repeat, ref_repeat);
  bench_decode(s, threads, repeat, ref_repeat);
  return 0;
}
