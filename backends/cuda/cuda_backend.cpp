// The CUDA backend object and its shared context: device discovery, stream, cuBLASLt handle, device
// memory, copies, synchronization and the device-side error flag.
#include "backends/cuda/cuda_backend.h"

#include <cstdlib>
#include <mutex>

#include "backends/cuda/cuda_context.h"

namespace seqrun::backends {

namespace cuda {

Status cuda_error(cudaError_t err, const std::string& what) {
  return make_error("{}: {} ({})", what, cudaGetErrorString(err), cudaGetErrorName(err));
}

Status cublas_error(cublasStatus_t status, const std::string& what) {
  return make_error("{}: cuBLAS status {} ({})", what, static_cast<int>(status),
                    cublasLtGetStatusString(status));
}

Result<std::unique_ptr<CudaContext>> CudaContext::create(int device) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the error so later calls do not see it
    return make_error("no CUDA device ({})", cudaGetErrorString(err));
  }
  if (count <= device)
    return make_error("no CUDA device (found {} devices, wanted device {})", count, device);
  std::unique_ptr<CudaContext> ctx(new CudaContext());
  ctx->device_ = device;
  if ((err = cudaSetDevice(device)) != cudaSuccess) return cuda_error(err, "no CUDA device: cudaSetDevice");
  if ((err = cudaGetDeviceProperties(&ctx->props_, device)) != cudaSuccess) {
    return cuda_error(err, "no CUDA device: cudaGetDeviceProperties");
  }
  if ((err = cudaStreamCreateWithFlags(&ctx->stream_, cudaStreamNonBlocking)) != cudaSuccess) {
    return cuda_error(err, "cuda: cudaStreamCreate");
  }
  const cublasStatus_t st = cublasLtCreate(&ctx->lt_);
  if (st != CUBLAS_STATUS_SUCCESS) return cublas_error(st, "cuda: cublasLtCreate");
  void* flag = nullptr;
  if ((err = cudaHostAlloc(&flag, sizeof(int), cudaHostAllocMapped)) != cudaSuccess) {
    return cuda_error(err, "cuda: cudaHostAlloc (error flag)");
  }
  ctx->error_flag_host_ = static_cast<int*>(flag);
  *ctx->error_flag_host_ = 0;
  void* flag_device = nullptr;
  if ((err = cudaHostGetDevicePointer(&flag_device, flag, 0)) != cudaSuccess) {
    return cuda_error(err, "cuda: cudaHostGetDevicePointer (error flag)");
  }
  ctx->error_flag_device_ = static_cast<int*>(flag_device);

  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  const cudaDeviceProp& p = ctx->props_;
  ctx->description_ =
      fmt::format("{} (sm_{}{}, {} SMs, {:.1f} GiB), driver {}.{}, runtime {}.{}", p.name, p.major, p.minor,
                  p.multiProcessorCount, static_cast<double>(p.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0),
                  driver / 1000, (driver % 1000) / 10, runtime / 1000, (runtime % 1000) / 10);
  return ctx;
}

CudaContext::~CudaContext() {
  // Errors are ignored here: at process exit the CUDA runtime may already be shut down.
  if (lt_ != nullptr) cublasLtDestroy(lt_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
  if (error_flag_host_ != nullptr) cudaFreeHost(error_flag_host_);
}

ErrorSink CudaContext::error_sink(const Node& node) {
  std::lock_guard<std::mutex> lock(sinks_mutex_);
  sink_names_.push_back(node.describe());
  return ErrorSink{error_flag_device_, static_cast<int32_t>(sink_names_.size())};
}

Status CudaContext::take_device_error() {
  volatile int* flag = error_flag_host_;
  const int id = *flag;
  if (id == 0) return Status::ok();
  *flag = 0;
  std::string who = "a CUDA kernel";
  {
    std::lock_guard<std::mutex> lock(sinks_mutex_);
    if (id > 0 && id <= static_cast<int>(sink_names_.size())) who = sink_names_[id - 1];
  }
  return make_error("{}: an index or position was out of range on the GPU (its outputs are invalid)", who);
}

Status CudaContext::synchronize(const std::string& what) {
  const cudaError_t err = cudaStreamSynchronize(stream_);
  if (err != cudaSuccess) return cuda_error(err, what + " (an earlier CUDA kernel or copy failed)");
  return take_device_error();
}

Status CudaContext::launched(cudaError_t err, const Node& node) const {
  if (err == cudaSuccess) return Status::ok();
  return cuda_error(err, node.describe() + ": CUDA kernel launch failed");
}

std::optional<ElemType> elem_type(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return ElemType::f32;
    case DType::f16:
      return ElemType::f16;
    case DType::bf16:
      return ElemType::bf16;
    case DType::i64:
      return ElemType::i64;
    case DType::i32:
      return ElemType::i32;
    case DType::boolean:
    case DType::u8:
      return ElemType::u8;
    default:
      return std::nullopt;
  }
}

bool is_cuda_float(DType dtype) {
  return dtype == DType::f32 || dtype == DType::f16 || dtype == DType::bf16;
}

std::optional<int> normalize_axis(int64_t axis, int rank) {
  if (axis < -rank || axis >= rank) return std::nullopt;
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

int64_t dims_product(const Shape& shape, int from, int to) {
  int64_t n = 1;
  for (int i = from; i < to; ++i) n *= shape[i];
  return n;
}

bool fill_broadcast(const Shape& operand, const Shape& out, int k, BroadcastMap* map) {
  const int rank = static_cast<int>(out.size());
  const int op_rank = static_cast<int>(operand.size());
  if (rank > kMaxRank || op_rank > rank) return false;
  map->rank = rank;
  int64_t stride = 1;
  for (int d = rank - 1; d >= 0; --d) {
    map->out_dims[d] = out[d];
    const int od = d - (rank - op_rank);
    if (od < 0) {
      map->strides[k][d] = 0;
      continue;
    }
    if (operand[od] == out[d]) {
      map->strides[k][d] = out[d] == 1 ? 0 : stride;
    } else if (operand[od] == 1) {
      map->strides[k][d] = 0;
    } else {
      return false;
    }
    stride *= operand[od];
  }
  return true;
}

namespace {

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(std::unique_ptr<CudaContext> ctx) : ctx_(std::move(ctx)) {
    register_elementwise_ops(kernels_, ctx_.get());
    register_matmul_ops(kernels_, ctx_.get());
    register_softmax_norm_ops(kernels_, ctx_.get());
    register_gather_transpose_ops(kernels_, ctx_.get());
    register_sequence_ops(kernels_, ctx_.get());
    register_recurrence_ops(kernels_, ctx_.get());
    register_copy_ops(kernels_, ctx_.get());
    register_cached_attention_ops(kernels_, ctx_.get());
  }
  std::string name() const override { return "cuda"; }
  DeviceKind device() const override { return DeviceKind::CUDA; }

  // One cudaMalloc per request (the plan asks once per arena, workspace and uploaded weight); cudaMalloc
  // returns 256-byte-aligned memory.
  Result<void*> allocate(size_t bytes) override {
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, bytes > 0 ? bytes : 256);
    if (err != cudaSuccess) {
      cudaGetLastError();
      return cuda_error(err, fmt::format("cuda: cannot allocate {} bytes of device memory", bytes));
    }
    return p;
  }
  void deallocate(void* ptr) override {
    if (ptr != nullptr) cudaFree(ptr);
  }
  Status copy_to_device(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0) return Status::ok();
    const cudaError_t err = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx_->stream());
    if (err != cudaSuccess)
      return cuda_error(err, fmt::format("cuda: copying {} bytes to the device", bytes));
    return ctx_->synchronize(fmt::format("cuda: copying {} bytes to the device", bytes));
  }
  Status copy_to_host(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0) return ctx_->synchronize("cuda: synchronize");
    const cudaError_t err = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx_->stream());
    if (err != cudaSuccess) return cuda_error(err, fmt::format("cuda: copying {} bytes to the host", bytes));
    return ctx_->synchronize(fmt::format("cuda: copying {} bytes to the host", bytes));
  }
  Status synchronize() override { return ctx_->synchronize("cuda: synchronize"); }

  const CudaContext& context() const { return *ctx_; }

 private:
  std::unique_ptr<CudaContext> ctx_;
};

struct Opened {
  CudaBackend* backend = nullptr;
  Status status;
};

const Opened& opened() {
  static const Opened result = [] {
    Opened o;
    Result<std::unique_ptr<CudaContext>> ctx = CudaContext::create(0);
    if (!ctx.is_ok()) {
      o.status = ctx.status();
      return o;
    }
    o.backend = new CudaBackend(std::move(ctx).value());  // process-wide, never destroyed
    return o;
  }();
  return result;
}

}  // namespace

}  // namespace cuda

Result<Backend*> cuda_backend() {
  const cuda::Opened& o = cuda::opened();
  if (o.backend == nullptr) return o.status;
  return static_cast<Backend*>(o.backend);
}

Result<std::unique_ptr<Backend>> make_cuda_backend() {
  SEQRUN_ASSIGN(std::unique_ptr<cuda::CudaContext> ctx, cuda::CudaContext::create(0));
  return std::unique_ptr<Backend>(new cuda::CudaBackend(std::move(ctx)));
}

std::string cuda_device_description() {
  const cuda::Opened& o = cuda::opened();
  if (o.backend == nullptr) return o.status.message();
  return o.backend->context().description();
}

}  // namespace seqrun::backends
