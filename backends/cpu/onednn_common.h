// oneDNN plumbing for the CPU kernels: the engine, the stream, memory descriptors from shapes, and
// BoundPrimitive, which makes a primitive's run-time cost just "swap pointers, execute".
//
// oneDNN is the 2.x API (Debian's 2.6). Its C++ API throws dnnl::error; every call site here catches
// it and turns it into a Status (factories decline instead), so nothing throws across a kernel.
// Primitives run on the calling thread's OpenMP team, so omp_set_num_threads (backends::set_cpu_threads)
// drives oneDNN and the own kernels alike.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <string>
#include <vector>

#include "backends/cpu/cpu_common.h"

namespace seqrun::backends::cpu::onednn {

using dims = dnnl::memory::dims;
using tag = dnnl::memory::format_tag;

// The process-wide CPU engine.
const dnnl::engine& engine();
// An in-order stream on the engine, one per calling thread (streams are not shared across threads).
dnnl::stream& stream();

inline dims to_dims(const Shape& s) {
  return dims(s.begin(), s.end());
}
// Row-major strides of `d`.
dims row_major_strides(const dims& d);
// f32 memory descriptor with explicit strides (row-major when `strides` is empty).
dnnl::memory::desc f32_desc(const dims& d, const dims& strides = {});

// One primitive with its arguments bound once. Memories are created at plan time without data;
// run() only sets data handles (skipped when the pointer did not change) and executes, so it
// creates and allocates nothing of its own. The scratchpad (scratchpad_mode::user) lives in the
// kernel's workspace at `scratchpad_offset`.
class BoundPrimitive {
 public:
  // `scratchpad` is the primitive descriptor's scratchpad_desc(); its bytes are reserved in `layout`.
  void init(dnnl::primitive primitive, const dnnl::memory::desc& scratchpad, WorkspaceLayout& layout);
  // Declares argument `arg` with layout `md`; its data pointer is set later with set().
  void bind(int arg, const dnnl::memory::desc& md);
  // Binds an argument to a memory that owns its data (pre-packed weights).
  void bind_owned(int arg, const dnnl::memory& memory);
  void set(int arg, const void* data);
  // Executes on the calling thread's stream; workspace is the kernel's workspace base.
  Status execute(const Node* node, void* workspace);
  bool valid() const { return static_cast<bool>(primitive_); }

 private:
  struct Arg {
    int id;
    dnnl::memory memory;
    const void* current;  // data handle last set (null: never set, or owned)
  };
  Arg& find(int id);
  void rebuild_c_args();
  dnnl::primitive primitive_;
  std::vector<Arg> args_;
  std::vector<dnnl_exec_arg_t> c_args_;  // the C view of args_, built at plan time
  size_t scratchpad_offset_ = 0;
  bool has_scratchpad_ = false;
};

// primitive_attr with a user-managed scratchpad (every primitive we create uses one).
dnnl::primitive_attr user_scratchpad_attr();

// Reorders a constant tensor described by `from` (bytes at `data`) into a new memory of layout `to`
// owned by the returned object: the plan-time packing of weights.
dnnl::memory pack_constant(const dnnl::memory::desc& from, const void* data, const dnnl::memory::desc& to);

// "gemm:jit" and friends: the implementation oneDNN picked, for kernel labels.
std::string impl_name(const dnnl::primitive_desc_base& pd);

}  // namespace seqrun::backends::cpu::onednn
