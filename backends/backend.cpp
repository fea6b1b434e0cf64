// Kernel factory registry, the reference-fallback kernel and the CPU backend object.
#include "backends/backend.h"

#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "backends/cpu/cpu_kernels.h"
#include "backends/reference/kernel.h"

namespace seqrun::backends {

const char* device_name(DeviceKind d) {
  return d == DeviceKind::CPU ? "cpu" : "cuda";
}

void KernelFactoryRegistry::add(const std::string& op, KernelFactory factory) {
  factories_[op].push_back(std::move(factory));
}

std::unique_ptr<Kernel> KernelFactoryRegistry::create(const KernelInfo& info) const {
  auto it = factories_.find(info.node->op());
  if (it == factories_.end()) return nullptr;
  for (const KernelFactory& f : it->second) {
    std::unique_ptr<Kernel> k = f(info);
    if (k) return k;
  }
  return nullptr;
}

std::vector<std::string> KernelFactoryRegistry::op_names() const {
  std::vector<std::string> names;
  for (const auto& [op, list] : factories_) names.push_back(op);
  return names;
}

namespace {

// Runs a reference kernel inside a plan: wraps the plan's buffers as tensor views, lets the reference
// kernel allocate its outputs, checks their shapes against the plan and copies them into place.
// Correct for every op; allocates per run, so fast kernels should replace it on hot paths.
class ReferenceFallbackKernel : public Kernel {
 public:
  ReferenceFallbackKernel(const KernelInfo& info, const reference::KernelEntry* entry)
      : node_(info.node), entry_(entry), body_runner_(info.run_body) {}

  Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs, void*) override {
    std::vector<Tensor> held;
    held.reserve(inputs.size());
    reference::KernelContext ctx{*node_, {}, {}, nullptr};
    ctx.run_graph = [](const Graph& body, const std::vector<Tensor>&,
                       const std::vector<Tensor>&) -> Result<std::vector<Tensor>> {
      return make_error("body '{}': nested graphs are run by the runtime, not a backend kernel", body.name());
    };
    if (body_runner_) ctx.run_graph = body_runner_;
    for (const TensorArg& a : inputs) {
      if (a.data == nullptr) {
        ctx.inputs.push_back(nullptr);
        continue;
      }
      Tensor t = Tensor::view(a.dtype, a.shape, a.data, nullptr);
      bool convert = entry_->compute_in_f32 &&
                     (a.dtype == DType::f16 || a.dtype == DType::bf16 || a.dtype == DType::f64);
      held.push_back(convert ? t.cast(DType::f32) : t);
      ctx.inputs.push_back(&held.back());
    }
    SEQRUN_TRY(entry_->fn(ctx));
    if (ctx.outputs.size() != outputs.size()) {
      return make_error("{}: kernel produced {} outputs, plan expects {}", node_->describe(),
                        ctx.outputs.size(), outputs.size());
    }
    for (size_t i = 0; i < outputs.size(); ++i) {
      const TensorArg& dst = outputs[i];
      if (dst.data == nullptr) continue;  // output not needed
      Tensor out = ctx.outputs[i];
      if (!out.defined()) return make_error("{}: output {} was not computed", node_->describe(), i);
      if (out.dtype() != dst.dtype) out = out.cast(dst.dtype);
      if (out.shape() != dst.shape) {
        return make_error("{}: output {} has shape {} at run time, the plan expected {}", node_->describe(),
                          i, shape_to_string(out.shape()), shape_to_string(dst.shape));
      }
      std::memcpy(dst.data, out.raw(), dst.nbytes());
    }
    return Status::ok();
  }
  std::string label() const override { return "reference"; }

 private:
  const Node* node_;
  const reference::KernelEntry* entry_;
  std::function<Result<std::vector<Tensor>>(const Graph&, const std::vector<Tensor>&,
                                            const std::vector<Tensor>&)>
      body_runner_;
};

void register_reference_fallback(KernelFactoryRegistry& registry) {
  const auto& ref = reference::KernelRegistry::global();
  for (const std::string& op : ref.op_names()) {
    const reference::KernelEntry* entry = ref.find(op);
    registry.add(op, [entry](const KernelInfo& info) -> std::unique_ptr<Kernel> {
      return std::make_unique<ReferenceFallbackKernel>(info, entry);
    });
  }
}

class CpuBackend : public Backend {
 public:
  explicit CpuBackend(bool fast_kernels) : fast_(fast_kernels) {
    if (fast_kernels) cpu::register_cpu_kernels(kernels_);
    register_reference_fallback(kernels_);
  }
  std::string name() const override { return fast_ ? "cpu" : "cpu-reference"; }
  DeviceKind device() const override { return DeviceKind::CPU; }
  Result<void*> allocate(size_t bytes) override {
    size_t rounded = std::max<size_t>((bytes + 63) / 64 * 64, 64);
    void* p = std::aligned_alloc(64, rounded);
    if (p == nullptr) return make_error("cpu: cannot allocate {} bytes", bytes);
    return p;
  }
  void deallocate(void* ptr) override { std::free(ptr); }
  Status copy_to_device(void* dst, const void* src, size_t bytes) override {
    std::memcpy(dst, src, bytes);
    return Status::ok();
  }
  Status copy_to_host(void* dst, const void* src, size_t bytes) override {
    std::memcpy(dst, src, bytes);
    return Status::ok();
  }

 private:
  bool fast_;
};

std::atomic<int> g_cpu_threads{0};

}  // namespace

Backend& cpu_backend() {
  static CpuBackend* backend = new CpuBackend(true);
  return *backend;
}

Backend& cpu_reference_backend() {
  static CpuBackend* backend = new CpuBackend(false);
  return *backend;
}

void set_cpu_threads(int threads) {
  int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  g_cpu_threads = n;
  omp_set_num_threads(n);
}

int cpu_threads() {
  if (g_cpu_threads == 0) set_cpu_threads(0);
  return g_cpu_threads;
}

}  // namespace seqrun::backends
