// The op-test table, reductions: Reduce* over inner/outer/all axes, ArgMax/ArgMin, CumSum, Softmax,
// LogSoftmax, Hardmax and TopK.
#include "tools/optest/optest.h"

namespace seqrun::optest {

namespace {

using Ints = std::vector<int64_t>;

void add_reduce_op_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t b = pick(rng, 1, 4), m = pick(rng, 1, 40), n = pick(rng, 1, 90);
  struct Reduce {
    const char* op;
    Fill fill;
    bool exact;
  };
  const Reduce reduces[] = {
      {"ReduceSum", uniform(-1, 1), false},       {"ReduceMean", uniform(-1, 1), false},
      {"ReduceMax", uniform(-1, 1), true},        {"ReduceMin", uniform(-1, 1), true},
      {"ReduceProd", uniform(0.8, 1.25), false},  {"ReduceL1", uniform(-1, 1), false},
      {"ReduceL2", uniform(-1, 1), false},        {"ReduceLogSum", uniform(0.1, 2), false},
      {"ReduceLogSumExp", uniform(-5, 5), false}, {"ReduceSumSquare", uniform(-1, 1), false},
  };
  for (const Reduce& r : reduces) {
    // Innermost axis (rows), a middle axis (strided), and everything (no axes input).
    Case& inner = add_case(cases, r.op, {f32({b, m, n}, r.fill), const_i64({-1})}).with_note("inner");
    if (r.exact) inner.exact();
    Case& middle = add_case(cases, r.op, {f32({b, m, n}, r.fill), const_i64({1})}).attr("keepdims", 0);
    if (r.exact) middle.exact();
    Case& all = add_case(cases, r.op, {f32({b, m, n}, r.fill)}).attr("keepdims", 0).with_note("all");
    if (r.exact) all.exact();
  }
  add_case(cases, "ReduceSum", {f32({b, m, n}), const_i64({0, 2})}).with_note("outer + inner");
  add_case(cases, "ReduceSum", {in(DType::i64, {b, m, n}, ints(-100, 100)), const_i64({1})});
  add_case(cases, "ReduceMax", {in(DType::i32, {b, m, n}, ints(-100, 100)), const_i64({-1})});
  add_case(cases, "ReduceMean", {in(DType::f16, {b, m, n}), const_i64({-1})});
  add_case(cases, "ReduceSum", {f32({b, m, n}), const_i64({})})
      .attr("noop_with_empty_axes", 1)
      .exact()
      .with_note("noop");
  add_case(cases, "ReduceMean", {f32({4096, 1024}), const_i64({-1})}).perf();
  add_case(cases, "ReduceSum", {f32({4096, 1024}), const_i64({0})}).perf();

  for (const char* op : {"ArgMax", "ArgMin"}) {
    add_case(cases, op, {f32({b, m, n})}).attr("axis", 1);
    add_case(cases, op, {f32({b, m, n})}).attr("axis", -1).attr("keepdims", 0);
    add_case(cases, op, {in(DType::i64, {m, n}, ints(0, 3))})
        .attr("axis", 1)
        .attr("select_last_index", 1)
        .with_note("ties, last");
  }
  add_case(cases, "CumSum", {f32({b, m, n}), const_i64({-1}, true)});
  add_case(cases, "CumSum", {f32({b, m, n}), const_i64({1}, true)}).attr("exclusive", 1).attr("reverse", 1);
  add_case(cases, "CumSum", {in(DType::i64, {m, n}, ints(-9, 9)), const_i64({0}, true)});
}

void add_softmax_topk_cases(std::vector<Case>& cases, Rng& rng) {
  const int64_t b = pick(rng, 1, 3), h = pick(rng, 1, 4), s = pick(rng, 1, 40), n = pick(rng, 1, 130);
  for (const char* op : {"Softmax", "LogSoftmax"}) {
    add_case(cases, op, {f32({b, h, s, n}, uniform(-8, 8))});
    add_case(cases, op, {f32({b, s, n}, uniform(-8, 8))}).attr("axis", 1).with_note("strided axis");
    add_case(cases, op, {f32({64, 1000}, uniform(-20, 20))});
  }
  add_case(cases, "Softmax", {in(DType::f16, {8, 257}, uniform(-8, 8))});
  add_case(cases, "Softmax", {f32({16 * 12 * 128, 128}, uniform(-8, 8))}).perf().with_note("attention rows");
  add_case(cases, "Softmax", {f32({64, 32000}, uniform(-8, 8))}).perf().with_note("vocab");
  add_case(cases, "Hardmax", {f32({b, s, n})}).exact();
  add_case(cases, "Hardmax", {f32({b, s, n})}).attr("axis", 1).exact();

  const int64_t k = pick(rng, 1, n);
  add_case(cases, "TopK", {f32({b, s, n}), const_i64({k})}).outputs(2).exact();
  add_case(cases, "TopK", {f32({b, s, n}), const_i64({std::min<int64_t>(s, 3)})})
      .attr("axis", 1)
      .attr("largest", 0)
      .outputs(2)
      .exact()
      .with_note("smallest");
  add_case(cases, "TopK", {in(DType::i64, {b, n}, ints(0, 5)), const_i64({k})}).outputs(2).with_note("ties");
  add_case(cases, "TopK", {f32({64, 32000}), const_i64({50})}).outputs(2).exact().perf();
}

}  // namespace

void add_reduce_cases(std::vector<Case>& cases, Rng& rng) {
  add_reduce_op_cases(cases, rng);
  add_softmax_topk_cases(cases, rng);
}

}  // namespace seqrun::optest
