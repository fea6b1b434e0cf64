// Backend and Kernel: how the scheduler runs a node on a device.
//
// A Backend owns a kernel registry keyed by op name; each registered factory looks at one node with
// concrete (shape-specialized) input and output types and returns a Kernel, or null when it does not
// handle that (dtype, shape, attribute) combination — so "the first backend whose registry has a
// kernel for (op, dtype)" is simply the first backend whose factory says yes.
//
// A Kernel is created and prepared once per execution plan (build oneDNN primitives, pre-pack
// constant weights, pick tile sizes) and then run many times. `run` receives pointers into memory
// the plan owns (the arena, pinned inputs/outputs, mapped weights) and must not allocate: scratch
// space is requested up front through `workspace_bytes` and handed to every run.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"
#include "ir/tensor.h"

namespace seqrun::backends {

enum class DeviceKind : uint8_t { CPU = 0, CUDA = 1 };
const char* device_name(DeviceKind d);

// One concrete tensor argument of a kernel call. `data` is null at prepare time except for constant
// inputs (weights), whose bytes the kernel may read and pre-pack.
struct TensorArg {
  DType dtype = DType::undefined;
  Shape shape;
  void* data = nullptr;

  int64_t numel() const { return num_elements(shape); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  int rank() const { return static_cast<int>(shape.size()); }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data);
  }
};

// What a kernel factory and Kernel::prepare see of a node: the node (attributes) and the concrete
// argument types. Absent optional inputs have dtype undefined.
struct KernelInfo {
  const Node* node = nullptr;
  std::vector<TensorArg> inputs;   // every node input (captures last); data set only for constants
  std::vector<TensorArg> outputs;  // data always null here
  int threads = 1;
  // Runs a nested graph (Scan/Loop/If bodies); set by the runtime, used by the reference fallback.
  std::function<Result<std::vector<Tensor>>(const Graph& body, const std::vector<Tensor>& inputs,
                                            const std::vector<Tensor>& captures)>
      run_body;
  bool input_present(int i) const {
    return i < static_cast<int>(inputs.size()) && inputs[i].dtype != DType::undefined;
  }
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // Once per plan, after the factory accepted the node.
  virtual Status prepare(const KernelInfo& info) {
    (void)info;
    return Status::ok();
  }
  // Scratch bytes `run` needs (valid after prepare); the plan provides them 64-byte aligned.
  virtual size_t workspace_bytes() const { return 0; }
  // Output `output` may be written over input `input` (same size, elementwise access pattern).
  virtual bool can_run_in_place(int output, int input) const {
    (void)output;
    (void)input;
    return false;
  }
  // Inputs/outputs in the plan's memory. Absent optional inputs have data == null.
  virtual Status run(const std::vector<TensorArg>& inputs, const std::vector<TensorArg>& outputs,
                     void* workspace) = 0;
  // Short label for profiles ("onednn:matmul", "avx2:softmax", "reference").
  virtual std::string label() const = 0;
};

using KernelFactory = std::function<std::unique_ptr<Kernel>(const KernelInfo& info)>;

class KernelFactoryRegistry {
 public:
  void add(const std::string& op, KernelFactory factory);
  // Tries the factories registered for info.node->op() in registration order.
  std::unique_ptr<Kernel> create(const KernelInfo& info) const;
  bool has_op(const std::string& op) const { return factories_.count(op) > 0; }
  std::vector<std::string> op_names() const;

 private:
  std::map<std::string, std::vector<KernelFactory>> factories_;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual DeviceKind device() const = 0;
  const KernelFactoryRegistry& kernels() const { return kernels_; }
  // Device memory for arenas and pinned buffers (64-byte aligned at least).
  virtual Result<void*> allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr) = 0;
  // Host <-> device copies (plain memcpy on the CPU).
  virtual Status copy_to_device(void* dst, const void* src, size_t bytes) = 0;
  virtual Status copy_to_host(void* dst, const void* src, size_t bytes) = 0;
  virtual Status synchronize() { return Status::ok(); }

 protected:
  KernelFactoryRegistry kernels_;
};

// The CPU backend: own AVX2/OpenMP kernels and oneDNN first, the reference kernels as the fallback
// for every other op (so every graph runs). Process-wide, created on first use.
Backend& cpu_backend();
// The same CPU backend with only the reference kernels: bit-exact with the reference executor (tests).
Backend& cpu_reference_backend();
// Sets the thread count shared by oneDNN and the own OpenMP kernels (0 = all cores).
void set_cpu_threads(int threads);
int cpu_threads();

}  // namespace seqrun::backends
