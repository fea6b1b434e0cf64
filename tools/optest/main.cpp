// seqrun-optest: every op of the table on every selected backend against the reference kernels
// (correctness), or timed (--perf); in the style of ggml's test-backend-ops.
#include <algorithm>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "backends/reference/kernel.h"
#include "tools/optest/backend_list.h"
#include "tools/optest/optest.h"
#include "tools/optest/runner.h"

namespace {

using namespace seqrun;
using namespace seqrun::optest;

struct Args {
  std::string backend = "cpu";
  std::string op;
  uint64_t seed = 42;
  bool list = false;
  bool list_missing = false;
  bool perf = false;
  bool large = false;
  int threads = 0;
  int warmup = 3;
  int repeat = 10;
};

// Ops of the reference registry that no case exercises (exit 1 if any). Ops some backend registers but
// the reference registry lacks cannot be checked at all: they are listed as a warning.
int list_missing(const std::vector<Case>& cases) {
  std::set<std::string> covered, reference_ops, backend_only;
  for (const Case& c : cases) covered.insert(c.op);
  for (const std::string& op : reference::KernelRegistry::global().op_names()) reference_ops.insert(op);
  for (const BackendEntry& e : available_backends()) {
    Result<backends::Backend*> b = e.open();
    if (!b.is_ok()) continue;
    for (const std::string& op : b.value()->kernels().op_names()) {
      if (reference_ops.count(op) == 0) backend_only.insert(op);
    }
  }
  int missing = 0;
  for (const std::string& op : reference_ops) {
    if (covered.count(op) == 0) {
      std::printf("missing: %s\n", op.c_str());
      ++missing;
    }
  }
  for (const std::string& op : backend_only) {
    std::printf("warning: %s has a backend kernel but no reference kernel: its cases are skipped\n",
                op.c_str());
  }
  std::printf("%d of %zu ops with a reference kernel have no case\n", missing, reference_ops.size());
  return missing == 0 ? 0 : 1;
}

// --op: an exact op name when one matches, else every op containing the text.
std::vector<size_t> select_cases(const std::vector<Case>& cases, const Args& args) {
  bool exact = false;
  for (const Case& c : cases) exact = exact || c.op == args.op;
  std::vector<size_t> chosen;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    if (!args.op.empty() && (exact ? c.op != args.op : c.op.find(args.op) == std::string::npos)) continue;
    if (c.perf_only && !args.perf && !args.large) continue;
    chosen.push_back(i);
  }
  return chosen;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Tally {
  int passed = 0;
  int failed = 0;
  int skipped = 0;
  std::set<std::string> fast_labels;
  int fast_cases = 0;
};

void run_case(const Case& c, uint64_t data_seed,
              const std::vector<std::pair<BackendEntry, backends::Backend*>>& list, const Args& args,
              std::vector<Tally>& tallies) {
  const std::string what = c.op + " " + describe_inputs(c);
  if (!args.perf && reference::KernelRegistry::global().find(c.op) == nullptr) {
    std::printf("SKIP %s: no reference kernel to compare with\n", what.c_str());
    for (Tally& t : tallies) ++t.skipped;
    return;
  }
  Result<CaseData> built = build_case(c, data_seed, !args.perf);
  for (size_t b = 0; b < list.size(); ++b) {
    const std::string& backend = list[b].first.name;
    Tally& tally = tallies[b];
    if (!built.is_ok()) {
      std::printf("FAIL %s %s: %s\n", what.c_str(), backend.c_str(), built.status().message().c_str());
      ++tally.failed;
      continue;
    }
    TimingOptions timing;
    if (args.perf) {
      timing.warmup = args.warmup;
      timing.repeat = std::max(1, args.repeat);
    }
    Result<BackendRun> run = run_on_backend(built.value(), *list[b].second, timing);
    if (!run.is_ok()) {
      std::printf("FAIL %s %s: %s\n", what.c_str(), backend.c_str(), run.status().message().c_str());
      ++tally.failed;
      continue;
    }
    if (!run->supported) {
      std::printf("SKIP %s %s: no kernel for this node\n", what.c_str(), backend.c_str());
      ++tally.skipped;
      continue;
    }
    const std::string& label = run->label;
    if (label != "reference") {
      ++tally.fast_cases;
      tally.fast_labels.insert(label);
    }
    if (args.perf) {
      bool is_flops = false;
      const double work = case_work(c, built.value(), &is_flops);
      const double us = median(run->times_us);
      const double rate = work / (us * 1e-6) / 1e9;
      std::printf("%s %s %s  %.1f us  %.2f %s\n", what.c_str(), backend.c_str(), label.c_str(), us, rate,
                  is_flops ? "GFLOP/s" : "GB/s");
      ++tally.passed;
      continue;
    }
    // A reference kernel must reproduce the reference executor exactly.
    Comparison cmp = compare_outputs(c, run->outputs, built->expected, label == "reference");
    const std::string bound = cmp.bound == 0.0 ? "exact" : fmt::format("{:.0e}", cmp.bound);
    std::printf("%-4s %s %s %s nmse=%.3g (bound %s)%s%s\n", cmp.ok ? "OK" : "FAIL", what.c_str(),
                backend.c_str(), label.c_str(), cmp.nmse, bound.c_str(), cmp.ok ? "" : ": ",
                cmp.detail.c_str());
    ++(cmp.ok ? tally.passed : tally.failed);
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  CLI::App app(
      "seqrun-optest: runs every op of the op-test table on the selected backends and compares each "
      "output with the reference kernels by normalized mean squared error; --perf times the same table",
      "seqrun-optest");
  app.add_option("--backend", args.backend,
                 "Backends to test: cpu, cpu-reference, cuda (CUDA builds), all, or a comma list")
      ->capture_default_str();
  app.add_option("--op", args.op, "Only cases of this op (exact name), or of ops containing this text");
  app.add_option("--seed", args.seed, "Seed for the random shapes and input values")->capture_default_str();
  app.add_flag("--list", args.list, "List the selected cases without running them");
  app.add_flag("--list-missing", args.list_missing, "List registered ops without a case; exit 1 if any");
  app.add_flag("--perf", args.perf,
               "Time each case (including the large perf-only cases) instead of checking");
  app.add_flag("--large", args.large, "Also check the large perf-only cases (slow: reference loops)");
  app.add_option("--threads", args.threads, "CPU threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  app.add_option("--warmup", args.warmup, "--perf: untimed runs per case")->capture_default_str();
  app.add_option("--repeat", args.repeat,
                 "--perf: timed runs per case (fewer when a run is slow); the median "
                 "is reported")
      ->capture_default_str();
  app.footer(
      "Lines: OK|FAIL op inputs backend kernel-label nmse=... (bound ...). In inputs, '#' marks a constant\n"
      "(weight) input and '_' an absent optional one. Exit codes: 0 all passed, 1 a case failed, 2 bad "
      "usage,\n3 a backend named by --backend cannot run here (cuda without a GPU).\n"
      "\n"
      "Examples:\n"
      "  seqrun-optest                          every op on the CPU backend\n"
      "  seqrun-optest --backend all --op MatMul\n"
      "  seqrun-optest --perf --op Linear --threads 8\n"
      "  seqrun-optest --list-missing");
  CLI11_PARSE(app, argc, argv);

  backends::set_cpu_threads(args.threads);
  Rng shape_rng(args.seed);
  const std::vector<Case> cases = build_cases(shape_rng);
  if (args.list_missing) return list_missing(cases);

  const std::vector<size_t> chosen = select_cases(cases, args);
  if (chosen.empty()) {
    std::fprintf(stderr, "seqrun-optest: error: no case matches --op '%s'\n", args.op.c_str());
    return 2;
  }
  if (args.list) {
    for (size_t i : chosen) {
      std::printf("%s %s%s\n", cases[i].op.c_str(), describe_inputs(cases[i]).c_str(),
                  cases[i].perf_only ? " [perf]" : "");
    }
    std::printf("%zu cases\n", chosen.size());
    return 0;
  }
  Result<std::vector<BackendEntry>> selected = select_backends(args.backend);
  if (!selected.is_ok()) {
    std::fprintf(stderr, "seqrun-optest: error: %s\n", selected.status().message().c_str());
    return 2;
  }
  std::vector<std::pair<BackendEntry, backends::Backend*>> list;
  for (const BackendEntry& e : selected.value()) {
    Result<backends::Backend*> b = e.open();
    if (b.is_ok()) {
      list.emplace_back(e, b.value());
    } else if (args.backend == "all") {
      std::printf("SKIP backend %s: %s\n", e.name.c_str(), b.status().message().c_str());
    } else {
      std::fprintf(stderr, "seqrun-optest: error: backend %s: %s\n", e.name.c_str(),
                   b.status().message().c_str());
      return 3;  // ctest counts it as skipped (SKIP_RETURN_CODE 3)
    }
  }
  std::vector<Tally> tallies(list.size());
  for (size_t i : chosen) run_case(cases[i], args.seed * 1000003u + i, list, args, tallies);

  int passed = 0, failed = 0, skipped = 0;
  for (size_t b = 0; b < list.size(); ++b) {
    const Tally& t = tallies[b];
    passed += t.passed;
    failed += t.failed;
    skipped += t.skipped;
    std::printf("%s: %d %s, %d failed, %d skipped; %d cases ran fast kernels%s%s\n",
                list[b].first.name.c_str(), t.passed, args.perf ? "timed" : "passed", t.failed, t.skipped,
                t.fast_cases, t.fast_labels.empty() ? "" : ": ",
                fmt::format("{}", fmt::join(t.fast_labels, " ")).c_str());
  }
  const std::string skipped_text = skipped > 0 ? fmt::format(", {} skipped", skipped) : "";
  std::printf("%d %s, %d failed%s\n", passed, args.perf ? "timed" : "passed", failed, skipped_text.c_str());
  return failed == 0 ? 0 : 1;
}
