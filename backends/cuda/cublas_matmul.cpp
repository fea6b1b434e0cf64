// CUDA matrix products through cuBLASLt: MatMul (batched, with a broadcast operand), Gemm, Linear and
// FusedLinear (bias + activation epilogue).
//
// Every op becomes one row-major problem Y[batch][M][N] = op(X)[M][K] · op(W)[K][N] (+ bias[N], then an
// activation). cuBLASLt is column-major, so the kernel computes Yᵀ = op(W)ᵀ · op(X)ᵀ: A = W, B = X, C = D = Y
// with m = N, n = M. Batches are strided (a stride of 0 broadcasts an operand); a 2-D W is folded into M.
// cuBLASLt fuses the epilogue when it can (bias, ReLU, both); the others run as one extra elementwise
// kernel over Y. f32 uses exact f32 math (CUBLAS_COMPUTE_32F) unless SEQRUN_CUDA_TF32=1; f16/bf16
// accumulate in f32. The algorithm is chosen once at prepare by cuBLASLt's heuristic.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "backends/cuda/cuda_context.h"

namespace seqrun::backends::cuda {

namespace {

constexpr size_t kWorkspaceBytes = 32u << 20;  // cuBLASLt's recommendation for Hopper

// The row-major problem (see the file comment).
struct GemmProblem {
  DType dtype = DType::undefined;
  int64_t m = 0, n = 0, k = 0, batch = 1;
  bool trans_x = false;                              // X stored [K, M]
  bool trans_w = false;                              // W stored [N, K]
  int64_t stride_x = 0, stride_w = 0, stride_y = 0;  // batch strides in elements (0 = broadcast)
  float alpha = 1.0f;
  bool has_bias = false;  // bias [N] is input `bias_input`
  int bias_input = -1;
  Activation act = Activation::None;
  int x_input = 0, w_input = 1;
};

cudaDataType_t cuda_data_type(DType dtype) {
  if (dtype == DType::f16) return CUDA_R_16F;
  if (dtype == DType::bf16) return CUDA_R_16BF;
  return CUDA_R_32F;
}

class MatmulKernel final : public CudaKernel {
 public:
  MatmulKernel(CudaContext* ctx, const Node* node, GemmProblem problem)
      : CudaKernel(ctx, node, "cublasLt:matmul"), pr_(problem) {}
  ~MatmulKernel() override { release(); }

  // Builds the descriptors and picks the algorithm (called by the factory, so a product cuBLASLt has no
  // algorithm for is declined and runs on the next backend). False when there is none.
  bool select_algorithm() {
    Status st = build(/*fuse_epilogue=*/true);
    if (st.is_ok() && !found_) {
      // No algorithm with the fused epilogue: plain product, then the elementwise epilogue.
      st = build(/*fuse_epilogue=*/false);
    }
    if (!st.is_ok() || !found_) {
      release();
      return false;
    }
    label_ = fused_ ? "cublasLt:matmul+epilogue" : "cublasLt:matmul";
    return true;
  }
  size_t workspace_bytes() const override { return kWorkspaceBytes; }

  Status run(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out, void* workspace) override {
    const void* x = in[pr_.x_input].data;
    const void* w = in[pr_.w_input].data;
    const void* bias = pr_.has_bias ? in[pr_.bias_input].data : nullptr;
    void* y = out[0].data;
    for (const void* p : {x, w, static_cast<const void*>(y)}) {
      if ((reinterpret_cast<uintptr_t>(p) & 15u) != 0) {
        return make_error("{}: cuBLASLt operand is not 16-byte aligned", node_->describe());
      }
    }
    if (fused_ && pr_.has_bias) {
      const cublasStatus_t st =
          cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias));
      if (st != CUBLAS_STATUS_SUCCESS) return cublas_error(st, node_->describe() + ": bias pointer");
    }
    const float beta = 0.0f;
    const cublasStatus_t st =
        cublasLtMatmul(ctx_->lt(), desc_, &pr_.alpha, w, a_, x, b_, &beta, y, c_, y, c_, &algo_, workspace,
                       workspace != nullptr ? kWorkspaceBytes : 0, ctx_->stream());
    if (st != CUBLAS_STATUS_SUCCESS) return cublas_error(st, node_->describe() + ": cublasLtMatmul");
    if (!fused_ && (pr_.has_bias || pr_.act != Activation::None)) {
      BiasActivationParams p;
      p.type = *elem_type(pr_.dtype);
      p.act = pr_.act;
      p.rows = pr_.batch * pr_.m;
      p.cols = pr_.n;
      p.bias = bias;
      p.y = y;
      return launched(launch_bias_activation(p, ctx_->stream()));
    }
    return Status::ok();
  }

 private:
  // Builds the descriptors and asks the heuristic for one algorithm; found_ says whether it gave one.
  Status build(bool fuse_epilogue) {
    release();
    found_ = false;
    cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    fused_ = false;
    if (fuse_epilogue && pr_.batch == 1 && (pr_.act == Activation::None || pr_.act == Activation::Relu) &&
        (pr_.has_bias || pr_.act == Activation::Relu)) {
      epilogue = pr_.act == Activation::Relu
                     ? (pr_.has_bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU)
                     : CUBLASLT_EPILOGUE_BIAS;
      fused_ = true;
    }
    if (fuse_epilogue && !fused_) return Status::ok();  // nothing to fuse: the caller builds the plain form
    const std::string what = node_->describe() + ": cuBLASLt setup";
    const cudaDataType_t type = cuda_data_type(pr_.dtype);
    cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
    const char* tf32 = std::getenv("SEQRUN_CUDA_TF32");
    if (pr_.dtype == DType::f32 && tf32 != nullptr && std::strcmp(tf32, "1") == 0) {
      compute = CUBLAS_COMPUTE_32F_FAST_TF32;
    }
    auto check = [&](cublasStatus_t st) {
      return st == CUBLAS_STATUS_SUCCESS ? Status::ok() : cublas_error(st, what);
    };
    SEQRUN_TRY(check(cublasLtMatmulDescCreate(&desc_, compute, CUDA_R_32F)));
    const cublasOperation_t trans_a = pr_.trans_w ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t trans_b = pr_.trans_x ? CUBLAS_OP_T : CUBLAS_OP_N;
    SEQRUN_TRY(
        check(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof(trans_a))));
    SEQRUN_TRY(
        check(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof(trans_b))));
    if (fused_) {
      SEQRUN_TRY(check(
          cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue))));
      // The heuristic reads the bias pointer's alignment: a 64-byte-aligned stand-in (arena offsets are
      // 64-byte aligned; the real pointer is set at every run).
      const void* bias_alignment = pr_.has_bias ? reinterpret_cast<const void*>(uintptr_t{64}) : nullptr;
      SEQRUN_TRY(check(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                      &bias_alignment, sizeof(bias_alignment))));
    }
    // Stored (pre-op) shapes, column-major: A = W, B = X, C = Yᵀ (N x M).
    const uint64_t a_rows = pr_.trans_w ? pr_.k : pr_.n, a_cols = pr_.trans_w ? pr_.n : pr_.k;
    const uint64_t b_rows = pr_.trans_x ? pr_.m : pr_.k, b_cols = pr_.trans_x ? pr_.k : pr_.m;
    SEQRUN_TRY(check(cublasLtMatrixLayoutCreate(&a_, type, a_rows, a_cols, static_cast<int64_t>(a_rows))));
    SEQRUN_TRY(check(cublasLtMatrixLayoutCreate(&b_, type, b_rows, b_cols, static_cast<int64_t>(b_rows))));
    SEQRUN_TRY(check(cublasLtMatrixLayoutCreate(&c_, type, pr_.n, pr_.m, pr_.n)));
    if (pr_.batch > 1) {
      const int32_t count = static_cast<int32_t>(pr_.batch);
      const int64_t strides[3] = {pr_.stride_w, pr_.stride_x, pr_.stride_y};
      cublasLtMatrixLayout_t layouts[3] = {a_, b_, c_};
      for (int i = 0; i < 3; ++i) {
        SEQRUN_TRY(check(cublasLtMatrixLayoutSetAttribute(layouts[i], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                          &count, sizeof(count))));
        SEQRUN_TRY(check(cublasLtMatrixLayoutSetAttribute(
            layouts[i], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &strides[i], sizeof(strides[i]))));
      }
    }
    SEQRUN_TRY(check(cublasLtMatmulPreferenceCreate(&pref_)));
    const uint64_t workspace = kWorkspaceBytes;
    SEQRUN_TRY(check(cublasLtMatmulPreferenceSetAttribute(pref_, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                          &workspace, sizeof(workspace))));
    // Plan buffers are at least 64-byte aligned; batch strides may lower that.
    const size_t elem = dtype_size(pr_.dtype);
    auto alignment_of = [&](int64_t stride) -> uint32_t {
      uint32_t a = 16;
      const int64_t bytes = stride * static_cast<int64_t>(elem);
      while (a > elem && pr_.batch > 1 && bytes % a != 0) a /= 2;
      return a;
    };
    const uint32_t align_a = alignment_of(pr_.stride_w), align_b = alignment_of(pr_.stride_x),
                   align_c = alignment_of(pr_.stride_y);
    SEQRUN_TRY(check(cublasLtMatmulPreferenceSetAttribute(pref_, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                          &align_a, sizeof(align_a))));
    SEQRUN_TRY(check(cublasLtMatmulPreferenceSetAttribute(pref_, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                          &align_b, sizeof(align_b))));
    SEQRUN_TRY(check(cublasLtMatmulPreferenceSetAttribute(pref_, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                          &align_c, sizeof(align_c))));
    SEQRUN_TRY(check(cublasLtMatmulPreferenceSetAttribute(pref_, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                          &align_c, sizeof(align_c))));
    cublasLtMatmulHeuristicResult_t result{};
    int count = 0;
    const cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(ctx_->lt(), desc_, a_, b_, c_, c_, pref_, 1, &result, &count);
    if (st == CUBLAS_STATUS_SUCCESS && count > 0 && result.state == CUBLAS_STATUS_SUCCESS) {
      algo_ = result.algo;
      found_ = true;
    }
    return Status::ok();
  }

  void release() {
    if (pref_ != nullptr) cublasLtMatmulPreferenceDestroy(pref_);
    for (cublasLtMatrixLayout_t l : {a_, b_, c_}) {
      if (l != nullptr) cublasLtMatrixLayoutDestroy(l);
    }
    if (desc_ != nullptr) cublasLtMatmulDescDestroy(desc_);
    pref_ = nullptr;
    a_ = b_ = c_ = nullptr;
    desc_ = nullptr;
  }

  GemmProblem pr_;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;
  cublasLtMatmulPreference_t pref_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
  bool found_ = false;
  bool fused_ = false;
};

bool valid_problem(const GemmProblem& p) {
  return p.m > 0 && p.n > 0 && p.k > 0 && p.batch > 0 && p.batch <= 2147483647;
}

std::unique_ptr<Kernel> make_kernel(const KernelInfo& info, CudaContext* ctx, const GemmProblem& p) {
  if (!valid_problem(p)) return nullptr;
  if (info.outputs[0].numel() != p.batch * p.m * p.n) return nullptr;
  auto kernel = std::make_unique<MatmulKernel>(ctx, info.node, p);
  if (!kernel->select_algorithm()) return nullptr;
  return kernel;
}

bool float_operands(const KernelInfo& info, int count) {
  if (static_cast<int>(info.inputs.size()) < count || info.outputs.size() != 1) return false;
  const DType dt = info.inputs[0].dtype;
  if (!is_cuda_float(dt) || info.outputs[0].dtype != dt) return false;
  for (size_t i = 1; i < info.inputs.size(); ++i) {
    if (info.input_present(static_cast<int>(i)) && info.inputs[i].dtype != dt) return false;
  }
  return true;
}

// MatMul: numpy semantics; a 1-D operand is a vector. Batch dims: equal, or one side without batch.
std::unique_ptr<Kernel> make_matmul(const KernelInfo& info, CudaContext* ctx) {
  if (!float_operands(info, 2) || info.inputs.size() != 2) return nullptr;
  Shape a = info.inputs[0].shape, b = info.inputs[1].shape;
  if (a.empty() || b.empty()) return nullptr;
  if (a.size() == 1) a.insert(a.begin(), 1);  // [K] -> [1, K]
  if (b.size() == 1) b.push_back(1);          // [K] -> [K, 1]
  GemmProblem p;
  p.dtype = info.inputs[0].dtype;
  p.m = a[a.size() - 2];
  p.k = a.back();
  p.n = b.back();
  if (b[b.size() - 2] != p.k) return nullptr;
  const int64_t batch_a = dims_product(a, 0, static_cast<int>(a.size()) - 2);
  const int64_t batch_b = dims_product(b, 0, static_cast<int>(b.size()) - 2);
  const int64_t batch = info.outputs[0].numel() / std::max<int64_t>(p.m * p.n, 1);
  if ((batch_a != batch && batch_a != 1) || (batch_b != batch && batch_b != 1)) return nullptr;
  if (batch_b == 1) {
    // W shared by every batch: fold the batch into M (X rows are contiguous).
    p.m *= batch_a;
    p.batch = 1;
    if (batch_a != batch) return nullptr;
  } else {
    p.batch = batch;
    p.stride_x = batch_a == 1 ? 0 : p.m * p.k;
    p.stride_w = p.k * p.n;
    p.stride_y = p.m * p.n;
  }
  return make_kernel(info, ctx, p);
}

// Linear: y = x Wᵀ + b, W [N, K].
std::unique_ptr<Kernel> make_linear(const KernelInfo& info, CudaContext* ctx) {
  if (!float_operands(info, 2)) return nullptr;
  const TensorArg& x = info.inputs[0];
  const TensorArg& w = info.inputs[1];
  if (x.rank() < 1 || w.rank() != 2 || x.shape.back() != w.shape[1]) return nullptr;
  GemmProblem p;
  p.dtype = x.dtype;
  p.k = w.shape[1];
  p.n = w.shape[0];
  p.m = dims_product(x.shape, 0, x.rank() - 1);
  p.trans_w = true;
  if (info.input_present(2)) {
    if (info.inputs[2].numel() != p.n) return nullptr;
    p.has_bias = true;
    p.bias_input = 2;
  }
  return make_kernel(info, ctx, p);
}

// FusedLinear: activation(x W + bias), W [K, N] (transB = 0) or [N, K].
std::unique_ptr<Kernel> make_fused_linear(const KernelInfo& info, CudaContext* ctx) {
  if (!float_operands(info, 2)) return nullptr;
  const TensorArg& x = info.inputs[0];
  const TensorArg& w = info.inputs[1];
  const bool trans_b = info.node->get_int("transB", 0) != 0;
  if (x.rank() < 1 || w.rank() != 2) return nullptr;
  GemmProblem p;
  p.dtype = x.dtype;
  p.trans_w = trans_b;
  p.k = trans_b ? w.shape[1] : w.shape[0];
  p.n = trans_b ? w.shape[0] : w.shape[1];
  if (x.shape.back() != p.k) return nullptr;
  p.m = dims_product(x.shape, 0, x.rank() - 1);
  if (info.input_present(2)) {
    if (info.inputs[2].numel() != p.n) return nullptr;
    p.has_bias = true;
    p.bias_input = 2;
  }
  const std::string act = info.node->get_string("activation", "none");
  if (act == "none") {
    p.act = Activation::None;
  } else if (act == "relu") {
    p.act = Activation::Relu;
  } else if (act == "gelu") {
    p.act = Activation::Gelu;
  } else if (act == "gelu_tanh") {
    p.act = Activation::GeluTanh;
  } else if (act == "silu") {
    p.act = Activation::Silu;
  } else if (act == "sigmoid") {
    p.act = Activation::Sigmoid;
  } else if (act == "tanh") {
    p.act = Activation::Tanh;
  } else {
    return nullptr;
  }
  return make_kernel(info, ctx, p);
}

// Gemm: alpha * A' B' + beta * C with C absent or a bias row [N] and beta = 1.
std::unique_ptr<Kernel> make_gemm(const KernelInfo& info, CudaContext* ctx) {
  if (!float_operands(info, 2)) return nullptr;
  const TensorArg& a = info.inputs[0];
  const TensorArg& b = info.inputs[1];
  if (a.rank() != 2 || b.rank() != 2) return nullptr;
  const bool trans_a = info.node->get_int("transA", 0) != 0;
  const bool trans_b = info.node->get_int("transB", 0) != 0;
  GemmProblem p;
  p.dtype = a.dtype;
  p.trans_x = trans_a;
  p.trans_w = trans_b;
  p.m = trans_a ? a.shape[1] : a.shape[0];
  p.k = trans_a ? a.shape[0] : a.shape[1];
  p.n = trans_b ? b.shape[0] : b.shape[1];
  if ((trans_b ? b.shape[1] : b.shape[0]) != p.k) return nullptr;
  p.alpha = info.node->get_float("alpha", 1.0f);
  if (info.input_present(2)) {
    const TensorArg& c = info.inputs[2];
    const bool row =
        (c.rank() == 1 && c.shape[0] == p.n) || (c.rank() == 2 && c.shape[0] == 1 && c.shape[1] == p.n);
    if (!row || info.node->get_float("beta", 1.0f) != 1.0f) return nullptr;
    p.has_bias = true;
    p.bias_input = 2;
  }
  return make_kernel(info, ctx, p);
}

}  // namespace

void register_matmul_ops(KernelFactoryRegistry& registry, CudaContext* ctx) {
  registry.add("MatMul", [ctx](const KernelInfo& info) { return make_matmul(info, ctx); });
  registry.add("Linear", [ctx](const KernelInfo& info) { return make_linear(info, ctx); });
  registry.add("FusedLinear", [ctx](const KernelInfo& info) { return make_fused_linear(info, ctx); });
  registry.add("Gemm", [ctx](const KernelInfo& info) { return make_gemm(info, ctx); });
}

}  // namespace seqrun::backends::cuda
