// Private to backends/cuda: the state every CUDA kernel of one backend shares (device, stream, cuBLASLt
// handle, the device-side error flag), the Kernel base class, and the registration entry points of the
// op families (one *_ops.cpp file each).
//
// Contract of a CUDA Kernel (see backends/backend.h): the factory declines (returns null) what it does not
// handle, so the next backend (the CPU) takes the node; `prepare` computes launch parameters and builds
// library descriptors; `run` only fills in pointers and enqueues work on the context's stream — no
// allocation, no host synchronization. A failed launch is an error naming the node; a fault inside a
// kernel surfaces at the backend's next synchronization.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cuda/cuda_kernels.h"
#include "ir/status.h"

namespace seqrun::backends::cuda {

// "what: <CUDA error text> (cudaErrorName)".
Status cuda_error(cudaError_t err, const std::string& what);
Status cublas_error(cublasStatus_t status, const std::string& what);

class CudaContext {
 public:
  // Opens `device`: checks that it exists, creates the stream, the cuBLASLt handle and the error flag.
  static Result<std::unique_ptr<CudaContext>> create(int device);
  ~CudaContext();
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  cublasLtHandle_t lt() const { return lt_; }
  const cudaDeviceProp& props() const { return props_; }
  const std::string& description() const { return description_; }

  // A sink through which the kernels of `node` report bad data (out-of-range indices).
  ErrorSink error_sink(const Node& node);
  // After a synchronization: an error naming the node whose kernel reported bad data, if any (and clears
  // the flag).
  Status take_device_error();
  // Waits for the stream; errors from earlier kernels and from the error flag surface here.
  Status synchronize(const std::string& what);
  // Ok, or an error naming `node` when a launch failed.
  Status launched(cudaError_t err, const Node& node) const;

 private:
  CudaContext() = default;
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  cudaDeviceProp props_{};
  std::string description_;
  int* error_flag_host_ = nullptr;    // pinned, mapped
  int* error_flag_device_ = nullptr;  // the same memory seen from the device
  std::mutex sinks_mutex_;
  std::vector<std::string> sink_names_;  // kernel id - 1 -> node description
};

// The CUDA element type of a seqrun dtype; nullopt for dtypes the kernels do not take.
std::optional<ElemType> elem_type(DType dtype);
// f32, f16 or bf16: the types the float kernels take.
bool is_cuda_float(DType dtype);

// Base of every CUDA kernel: the context, the node (for errors) and the label.
class CudaKernel : public Kernel {
 public:
  CudaKernel(CudaContext* ctx, const Node* node, std::string label)
      : ctx_(ctx), node_(node), label_(std::move(label)) {}
  std::string label() const override { return label_; }

 protected:
  Status launched(cudaError_t err) const { return ctx_->launched(err, *node_); }
  CudaContext* ctx_;
  const Node* node_;
  std::string label_;
};

// Registration of the op families (each file's factories decline what they do not handle).
void register_elementwise_ops(KernelFactoryRegistry& registry, CudaContext* ctx);   // elementwise_ops.cpp
void register_matmul_ops(KernelFactoryRegistry& registry, CudaContext* ctx);        // cublas_matmul.cpp
void register_softmax_norm_ops(KernelFactoryRegistry& registry, CudaContext* ctx);  // softmax_norm_ops.cpp
void register_gather_transpose_ops(KernelFactoryRegistry& registry,
                                   CudaContext* ctx);                             // gather_transpose_ops.cpp
void register_sequence_ops(KernelFactoryRegistry& registry, CudaContext* ctx);    // sequence_ops.cpp
void register_recurrence_ops(KernelFactoryRegistry& registry, CudaContext* ctx);  // recurrence_ops.cpp
void register_copy_ops(KernelFactoryRegistry& registry, CudaContext* ctx);        // copy_ops.cpp
void register_cached_attention_ops(KernelFactoryRegistry& registry,
                                   CudaContext* ctx);  // cached_attention_ops.cpp

// Shared helpers for factories.
// The normalized axis, or nullopt when out of range.
std::optional<int> normalize_axis(int64_t axis, int rank);
// Elements of dims [from, to) of `shape`.
int64_t dims_product(const Shape& shape, int from, int to);
// Right-aligns `operand` to `out` (numpy broadcasting) and fills strides[k] of `map`; false when the
// operand does not broadcast to `out` or the rank exceeds kMaxRank.
bool fill_broadcast(const Shape& operand, const Shape& out, int k, BroadcastMap* map);

}  // namespace seqrun::backends::cuda
