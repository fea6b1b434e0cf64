// oneDNN engine, per-thread stream, descriptors, BoundPrimitive and weight packing (see onednn_common.h).
#include "backends/cpu/onednn_common.h"

namespace seqrun::backends::cpu::onednn {

const dnnl::engine& engine() {
  static const dnnl::engine* cpu_engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *cpu_engine;
}

dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

dims row_major_strides(const dims& d) {
  dims strides(d.size(), 1);
  for (size_t i = d.size(); i-- > 1;) strides[i - 1] = strides[i] * d[i];
  return strides;
}

dnnl::memory::desc f32_desc(const dims& d, const dims& strides) {
  return dnnl::memory::desc(d, dnnl::memory::data_type::f32,
                            strides.empty() ? row_major_strides(d) : strides);
}

void BoundPrimitive::init(dnnl::primitive primitive, const dnnl::memory::desc& scratchpad,
                          WorkspaceLayout& layout) {
  primitive_ = std::move(primitive);
  has_scratchpad_ = scratchpad.get_size() > 0;
  if (has_scratchpad_) {
    scratchpad_offset_ = layout.add(scratchpad.get_size());
    bind(DNNL_ARG_SCRATCHPAD, scratchpad);
  }
}

BoundPrimitive::Arg& BoundPrimitive::find(int id) {
  for (Arg& a : args_) {
    if (a.id == id) return a;
  }
  args_.push_back({id, dnnl::memory(), nullptr});
  return args_.back();
}

void BoundPrimitive::rebuild_c_args() {
  c_args_.clear();
  for (const Arg& a : args_) c_args_.push_back({a.id, a.memory.get()});
}

void BoundPrimitive::bind(int arg, const dnnl::memory::desc& md) {
  Arg& a = find(arg);
  a.memory = dnnl::memory(md, engine(), DNNL_MEMORY_NONE);
  a.current = nullptr;
  rebuild_c_args();
}

void BoundPrimitive::bind_owned(int arg, const dnnl::memory& memory) {
  Arg& a = find(arg);
  a.memory = memory;
  a.current = nullptr;
  rebuild_c_args();
}

void BoundPrimitive::set(int arg, const void* data) {
  for (Arg& a : args_) {
    if (a.id != arg) continue;
    if (a.current != data) {
      a.memory.set_data_handle(const_cast<void*>(data));
      a.current = data;
    }
    return;
  }
}

Status BoundPrimitive::execute(const Node* node, void* workspace) {
  try {
    if (has_scratchpad_) set(DNNL_ARG_SCRATCHPAD, static_cast<char*>(workspace) + scratchpad_offset_);
    const dnnl_status_t st = dnnl_primitive_execute(primitive_.get(), stream().get(),
                                                    static_cast<int>(c_args_.size()), c_args_.data());
    if (st != dnnl_success)
      return node_error(node, "oneDNN execute failed (status {})", static_cast<int>(st));
    stream().wait();  // a no-op for the OpenMP CPU runtime, which executes synchronously
  } catch (const dnnl::error& e) {
    return node_error(node, "oneDNN: {}", e.what());
  }
  return Status::ok();
}

dnnl::primitive_attr user_scratchpad_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::memory pack_constant(const dnnl::memory::desc& from, const void* data, const dnnl::memory::desc& to) {
  dnnl::memory src(from, engine(), const_cast<void*>(data));
  dnnl::memory dst(to, engine());
  dnnl::reorder(src, dst).execute(stream(), src, dst);
  stream().wait();
  return dst;
}

std::string impl_name(const dnnl::primitive_desc_base& pd) {
  return pd.impl_info_str();
}

}  // namespace seqrun::backends::cpu::onednn
