// The op-test runner: builds a case's one-node graph, computes reference outputs, runs the node on a
// backend through its kernel registry and compares by normalized mean squared error (see runner.h).
#include "tools/optest/runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "ir/infer.h"
#include "runtime/executor.h"

namespace seqrun::optest {

namespace {

Tensor make_input(const InputSpec& spec, Rng& rng) {
  if (spec.fill.kind == Fill::Kind::Custom) {
    Tensor t = Tensor::empty(spec.dtype, spec.shape);
    spec.fill.custom(t, rng);
    return t;
  }
  // Draw in double, then convert (integers truncate, f16/bf16 round, bool is v != 0).
  const int64_t n = num_elements(spec.shape);
  std::vector<double> v(static_cast<size_t>(n));
  std::uniform_real_distribution<double> u(spec.fill.lo, spec.fill.hi);
  std::uniform_int_distribution<int64_t> k(static_cast<int64_t>(spec.fill.lo),
                                           static_cast<int64_t>(spec.fill.hi));
  std::bernoulli_distribution coin(spec.fill.p_true);
  for (int64_t i = 0; i < n; ++i) {
    switch (spec.fill.kind) {
      case Fill::Kind::Uniform:
        v[i] = u(rng);
        break;
      case Fill::Kind::Ints:
        v[i] = static_cast<double>(k(rng));
        break;
      case Fill::Kind::Bools:
        v[i] = coin(rng) ? 1.0 : 0.0;
        break;
      case Fill::Kind::Values:
        v[i] = i < static_cast<int64_t>(spec.fill.values.size()) ? spec.fill.values[i] : 0.0;
        break;
      case Fill::Kind::Custom:
        break;
    }
  }
  return Tensor::from_vector<double>(spec.shape, v).cast(spec.dtype);
}

// Device buffers owned for one backend run; freed on every exit path.
class DeviceBuffers {
 public:
  explicit DeviceBuffers(backends::Backend& backend) : backend_(backend) {}
  ~DeviceBuffers() {
    for (void* p : buffers_) backend_.deallocate(p);
  }
  DeviceBuffers(const DeviceBuffers&) = delete;
  DeviceBuffers& operator=(const DeviceBuffers&) = delete;
  Result<void*> allocate(size_t bytes) {
    SEQRUN_ASSIGN(void* p, backend_.allocate(bytes));
    buffers_.push_back(p);
    return p;
  }

 private:
  backends::Backend& backend_;
  std::vector<void*> buffers_;
};

Status run_once(backends::Kernel& kernel, backends::Backend& backend,
                const std::vector<backends::TensorArg>& in, const std::vector<backends::TensorArg>& out,
                void* workspace) {
  SEQRUN_TRY(kernel.run(in, out, workspace));
  return backend.synchronize();
}

bool same_value(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) || a == b;
}

std::string show_shape(const Shape& s) {
  return shape_to_string(s);
}

}  // namespace

Result<CaseData> build_case(const Case& c, uint64_t data_seed, bool need_reference) {
  CaseData data;
  data.graph = std::make_unique<Graph>("optest");
  Graph& g = *data.graph;
  Rng rng(data_seed);
  std::vector<Value*> node_inputs;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const InputSpec& spec = c.inputs[i];
    data.constant.push_back(spec.constant);
    if (spec.dtype == DType::undefined) {
      data.inputs.emplace_back();
      node_inputs.push_back(nullptr);
      continue;
    }
    Tensor t = make_input(spec, rng);
    data.inputs.push_back(t);
    const std::string name = fmt::format("in{}", i);
    if (spec.constant) {
      node_inputs.push_back(g.add_constant(name, t));
    } else {
      node_inputs.push_back(g.add_input(name, TensorType::from_shape(spec.dtype, spec.shape)));
      data.graph_inputs.push_back(t);
    }
  }
  data.node = g.add_node(c.op, node_inputs, c.num_outputs, c.attrs);
  data.node->set_num_captures(c.num_captures);
  g.set_outputs(data.node->outputs());
  SEQRUN_TRY(infer_graph_types(g));

  bool shapes_known = true;
  for (Value* out : data.node->outputs()) shapes_known = shapes_known && out->type().is_static();
  if (need_reference || !shapes_known) {
    runtime::ReferenceExecutor executor;
    SEQRUN_ASSIGN(data.expected, executor.run(g, data.graph_inputs));
  }
  for (int i = 0; i < data.node->num_outputs(); ++i) {
    const TensorType& type = data.node->output(i)->type();
    backends::TensorArg arg;
    arg.dtype = type.dtype();
    if (!data.expected.empty()) {
      const Tensor& ref = data.expected[i];
      if (type.is_static() && *type.static_shape() != ref.shape()) {
        return make_error("output {}: shape inference says {}, the reference kernel computed {}", i,
                          type.to_string(), show_shape(ref.shape()));
      }
      if (ref.dtype() != type.dtype()) {
        return make_error("output {}: shape inference says dtype {}, the reference kernel computed {}", i,
                          dtype_name(type.dtype()), dtype_name(ref.dtype()));
      }
      arg.shape = ref.shape();
    } else {
      arg.shape = *type.static_shape();
    }
    data.output_args.push_back(arg);
  }
  return data;
}

Result<BackendRun> run_on_backend(const CaseData& data, backends::Backend& backend,
                                  const TimingOptions& timing) {
  DeviceBuffers buffers(backend);
  backends::KernelInfo info;
  info.node = data.node;
  info.threads = backends::cpu_threads();
  // Nested bodies (Scan/Loop/If, FlexAttention modifiers) run on the host reference executor.
  info.run_body = [](const Graph& body, const std::vector<Tensor>& inputs,
                     const std::vector<Tensor>& captures) {
    return runtime::ReferenceExecutor().run_body(body, inputs, captures);
  };
  std::vector<backends::TensorArg> run_inputs;
  for (size_t i = 0; i < data.inputs.size(); ++i) {
    const Tensor& t = data.inputs[i];
    backends::TensorArg arg;
    if (t.defined()) {
      arg.dtype = t.dtype();
      arg.shape = t.shape();
      SEQRUN_ASSIGN(arg.data, buffers.allocate(t.nbytes()));
      SEQRUN_TRY(backend.copy_to_device(arg.data, t.raw(), t.nbytes()));
    }
    run_inputs.push_back(arg);
    backends::TensorArg at_prepare = arg;
    if (!data.constant[i]) at_prepare.data = nullptr;  // only constants are visible at prepare time
    info.inputs.push_back(at_prepare);
  }
  info.outputs = data.output_args;

  std::unique_ptr<backends::Kernel> kernel = backend.kernels().create(info);
  if (!kernel) {
    BackendRun unsupported;
    unsupported.supported = false;
    return unsupported;
  }
  SEQRUN_TRY(kernel->prepare(info).with_context("prepare"));
  void* workspace = nullptr;
  if (kernel->workspace_bytes() > 0) {
    SEQRUN_ASSIGN(workspace, buffers.allocate(kernel->workspace_bytes()));
  }
  std::vector<backends::TensorArg> run_outputs = data.output_args;
  for (backends::TensorArg& out : run_outputs) {
    SEQRUN_ASSIGN(out.data, buffers.allocate(out.nbytes()));
  }

  BackendRun result;
  result.label = kernel->label();
  if (timing.repeat <= 0) {
    SEQRUN_TRY(run_once(*kernel, backend, run_inputs, run_outputs, workspace));
  } else {
    using Clock = std::chrono::steady_clock;
    auto timed_run = [&]() -> Result<double> {
      auto start = Clock::now();
      SEQRUN_TRY(run_once(*kernel, backend, run_inputs, run_outputs, workspace));
      return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
    };
    // The first run also sizes the loop: a slow kernel gets fewer runs (about budget_s per case), and
    // one that alone takes more than half the budget is reported from that run.
    SEQRUN_ASSIGN(double first_us, timed_run());
    const double runs_in_budget = timing.budget_s * 1e6 / std::max(first_us, 1.0);
    if (runs_in_budget < 2.0) {
      result.times_us.push_back(first_us);
    } else {
      const int warmup = std::min<int>(std::max(0, timing.warmup - 1), static_cast<int>(runs_in_budget / 4));
      const int repeat = std::max(1, std::min<int>(timing.repeat, static_cast<int>(runs_in_budget)));
      for (int i = 0; i < warmup; ++i) SEQRUN_TRY(timed_run().status());
      for (int i = 0; i < repeat; ++i) {
        SEQRUN_ASSIGN(double us, timed_run());
        result.times_us.push_back(us);
      }
    }
  }
  for (const backends::TensorArg& out : run_outputs) {
    Tensor host = Tensor::empty(out.dtype, out.shape);
    SEQRUN_TRY(backend.copy_to_host(host.raw(), out.data, out.nbytes()));
    result.outputs.push_back(host);
  }
  return result;
}

double nmse_bound(const Case& c, DType dtype) {
  if (c.max_nmse >= 0.0) return c.max_nmse;
  if (dtype == DType::f16) return 1e-4;
  if (dtype == DType::bf16) return 1e-3;
  return 1e-7;
}

Comparison compare_outputs(const Case& c, const std::vector<Tensor>& got, const std::vector<Tensor>& expected,
                           bool exact) {
  Comparison cmp;
  // The bound printed: the tightest of the float outputs' bounds (0 when every output is exact).
  cmp.bound = -1.0;
  for (const Tensor& want : expected) {
    if (exact || !is_float(want.dtype())) continue;
    const double b = nmse_bound(c, want.dtype());
    cmp.bound = cmp.bound < 0.0 ? b : std::min(cmp.bound, b);
  }
  cmp.bound = std::max(cmp.bound, 0.0);
  for (size_t o = 0; o < expected.size(); ++o) {
    const Tensor& want = expected[o];
    const Tensor& have = got[o];
    const std::string which = expected.size() > 1 ? fmt::format("output {}: ", o) : "";
    if (have.dtype() != want.dtype() || have.shape() != want.shape()) {
      cmp.ok = false;
      cmp.detail = fmt::format("{}got {}{}, want {}{}", which, dtype_name(have.dtype()),
                               show_shape(have.shape()), dtype_name(want.dtype()), show_shape(want.shape()));
      return cmp;
    }
    const double bound = exact || !is_float(want.dtype()) ? 0.0 : nmse_bound(c, want.dtype());
    if (bound == 0.0) {
      // Bit for bit: report the first differing element.
      const size_t elem = dtype_size(want.dtype());
      for (int64_t i = 0; i < want.numel(); ++i) {
        if (std::memcmp(static_cast<const char*>(have.raw()) + i * elem,
                        static_cast<const char*>(want.raw()) + i * elem, elem) != 0) {
          cmp.ok = false;
          cmp.nmse = INFINITY;
          cmp.detail = fmt::format("{}element {} is {}, want {} (bit for bit)", which, i, have.get_f64(i),
                                   want.get_f64(i));
          return cmp;
        }
      }
      continue;
    }
    double err = 0.0, ref = 0.0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      const double a = have.get_f64(i), b = want.get_f64(i);
      if (!std::isfinite(b) || !std::isfinite(a)) {
        if (!same_value(a, b)) {
          cmp.ok = false;
          cmp.nmse = INFINITY;
          cmp.detail = fmt::format("{}element {} is {}, want {}", which, i, a, b);
          return cmp;
        }
        continue;
      }
      err += (a - b) * (a - b);
      ref += b * b;
    }
    // An all-zero reference makes the ratio meaningless: use the mean squared error instead.
    const double nmse = ref > 0.0 ? err / ref : err / static_cast<double>(std::max<int64_t>(want.numel(), 1));
    cmp.nmse = std::max(cmp.nmse, nmse);
    if (!(nmse <= bound)) {
      cmp.ok = false;
      if (cmp.detail.empty()) cmp.detail = fmt::format("{}nmse {:.3g} exceeds {:.3g}", which, nmse, bound);
    }
  }
  return cmp;
}

double case_work(const Case& c, const CaseData& data, bool* is_flops) {
  std::vector<backends::TensorArg> in;
  for (const Tensor& t : data.inputs) {
    backends::TensorArg arg;
    if (t.defined()) {
      arg.dtype = t.dtype();
      arg.shape = t.shape();
    }
    in.push_back(arg);
  }
  *is_flops = static_cast<bool>(c.flops);
  if (c.flops) return c.flops(in, data.output_args);
  double bytes = 0.0;
  for (const backends::TensorArg& a : in)
    bytes += a.dtype == DType::undefined ? 0.0 : static_cast<double>(a.nbytes());
  for (const backends::TensorArg& a : data.output_args) bytes += static_cast<double>(a.nbytes());
  return bytes;
}

}  // namespace seqrun::optest
