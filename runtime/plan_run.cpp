// ExecutionPlan::run: binds the caller's tensors, runs every step (or the reference executor), copies
// outputs.
#include <omp.h>

#include <cmath>
#include <cstring>

#include "runtime/executor.h"
#include "runtime/plan.h"
#include "runtime/plan_internal.h"

namespace seqrun::runtime {

using namespace plan_detail;

namespace {

// A present tensor must never be handed to a kernel as null (null means "absent"): zero-byte tensors
// whose storage is null point here instead.
alignas(64) unsigned char g_empty_storage[64];

bool ranges_overlap(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  if (a_bytes == 0 || b_bytes == 0 || a == nullptr || b == nullptr) return false;
  auto pa = reinterpret_cast<uintptr_t>(a);
  auto pb = reinterpret_cast<uintptr_t>(b);
  return pa < pb + b_bytes && pb < pa + a_bytes;
}

// Whether the caller's outputs[j] can receive a result of this dtype and shape: it fits exactly and shares no
// bytes with an input or an earlier output (a kernel would overwrite data it still reads) — except the input
// `alias_input` when it is exactly the same buffer (an op that updates that input in place, see plan.h).
bool output_fits(const std::vector<Tensor>& outputs, size_t j, DType dtype, const Shape& shape,
                 const std::vector<Tensor>& inputs, int alias_input = -1) {
  const Tensor& t = outputs[j];
  if (!t.defined() || t.dtype() != dtype || t.shape() != shape) return false;
  if (t.raw() == nullptr && t.nbytes() > 0) return false;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    if (static_cast<int>(i) == alias_input && in.raw() == t.raw() && in.nbytes() == t.nbytes()) continue;
    if (ranges_overlap(t.raw(), t.nbytes(), in.raw(), in.nbytes())) return false;
  }
  for (size_t k = 0; k < j; ++k) {
    if (ranges_overlap(t.raw(), t.nbytes(), outputs[k].raw(), outputs[k].nbytes())) return false;
  }
  return true;
}

Status check_finite_values(const Node& node, const Value& value, const TensorArg& arg) {
  if (!is_float(arg.dtype) || arg.data == nullptr) return Status::ok();
  Tensor t = Tensor::view(arg.dtype, arg.shape, arg.data, nullptr);
  for (int64_t k = 0; k < t.numel(); ++k) {
    double v = t.get_f64(k);
    if (!std::isfinite(v)) {
      return make_error("{}: output '{}' has a non-finite value ({}) at element {}", node.describe(),
                        value.name(), v, k);
    }
  }
  return Status::ok();
}

}  // namespace

Status ExecutionPlan::run(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs, Profile* profile) {
  std::lock_guard<std::mutex> lock(run_mutex_);
  // omp_set_num_threads applies to the calling thread only: set it here, on the thread that runs the
  // kernels, so the session's thread setting holds on every thread it is used from.
  if (omp_get_max_threads() != threads_) omp_set_num_threads(threads_);
  const Graph& g = *graph_;
  if (inputs.size() != g.inputs().size()) {
    return make_error("graph '{}' expects {} inputs, got {}", g.name(), g.inputs().size(), inputs.size());
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TensorType& type = g.inputs()[i]->type();
    if (!inputs[i].defined()) return make_error("input '{}' is missing", g.inputs()[i]->name());
    if (inputs[i].dtype() != type.dtype() || !type.static_shape() ||
        inputs[i].shape() != *type.static_shape()) {
      return make_error("input '{}': the plan was built for {}, got {}{}", g.inputs()[i]->name(),
                        type.to_string(), dtype_name(inputs[i].dtype()), shape_to_string(inputs[i].shape()));
    }
  }
  // Reuse the caller's output tensors when they fit and share no bytes with an input or another output.
  outputs.resize(g.outputs().size());
  if (reference_fallback_) return run_reference(inputs, outputs, profile);
  for (size_t j = 0; j < outputs.size(); ++j) {
    const TensorType& type = g.outputs()[j]->type();
    const int alias = j < output_alias_input_.size() ? output_alias_input_[j] : -1;
    if (!output_fits(outputs, j, type.dtype(), *type.static_shape(), inputs, alias)) {
      outputs[j] = Tensor::empty(type.dtype(), *type.static_shape());
    }
  }
  return run_planned(inputs, outputs, profile);
}

Status ExecutionPlan::run_reference(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs,
                                    Profile* profile) {
  const double start = profile != nullptr ? profile->now_us() : 0.0;
  ExecOptions exec_options;
  exec_options.check_finite = check_finite_;
  SEQRUN_ASSIGN(std::vector<Tensor> results, ReferenceExecutor(exec_options).run(*graph_, inputs));
  for (size_t j = 0; j < results.size() && j < outputs.size(); ++j) {
    if (output_fits(outputs, j, results[j].dtype(), results[j].shape(), inputs)) {
      if (results[j].nbytes() > 0) std::memcpy(outputs[j].raw(), results[j].raw(), results[j].nbytes());
    } else {
      outputs[j] = results[j];
    }
  }
  if (profile != nullptr) {
    ProfileEvent e;
    e.op = "graph";
    e.node = graph_->name();
    e.kernel = "reference-executor";
    e.category = "graph";
    for (const Tensor& t : inputs) e.input_shapes.push_back(t.shape());
    for (const Tensor& t : outputs) e.output_shapes.push_back(t.shape());
    e.start_us = start;
    e.dur_us = profile->now_us() - start;
    profile->add(std::move(e));
  }
  return Status::ok();
}

Status ExecutionPlan::run_planned(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs,
                                  Profile* profile) {
  Impl& im = *impl_;
  auto resolve = [&](int s) -> void* {
    if (s < 0) return nullptr;
    const Slot& r = im.slots[im.root[s]];
    void* p = nullptr;
    switch (r.home) {
      case Home::None:
        return nullptr;
      case Home::Input:
        p = const_cast<void*>(inputs[r.index].raw());
        break;
      case Home::Output:
        p = outputs[r.index].raw();
        break;
      case Home::Constant:
        p = const_cast<void*>(r.constant);
        break;
      case Home::Arena:
        p = im.devices[r.device].arena + buffers_[r.index].offset;
        break;
    }
    return p != nullptr ? p : g_empty_storage;
  };

  for (Step& step : im.steps) {
    const double start = profile != nullptr ? profile->now_us() : 0.0;
    if (step.kind == Step::Kind::Copy) {
      void* src = resolve(step.in_slots[0]);
      void* dst = resolve(step.out_slots[0]);
      const uint64_t bytes = im.slots[step.out_slots[0]].bytes;
      if (bytes > 0) {
        Status st = step.copy_to_host ? step.backend->copy_to_host(dst, src, bytes)
                                      : step.backend->copy_to_device(dst, src, bytes);
        if (!st) return st.with_context("copying '" + step.name + "' (" + step.label + ")");
      }
    } else if (step.kind == Step::Kind::Kernel) {
      for (size_t i = 0; i < step.in_slots.size(); ++i) step.in_args[i].data = resolve(step.in_slots[i]);
      for (size_t o = 0; o < step.out_slots.size(); ++o) step.out_args[o].data = resolve(step.out_slots[o]);
      Status st = step.kernel->run(step.in_args, step.out_args, im.devices[step.device].workspace);
      if (!st) {
        // Errors name the node; the reference kernels already do, other kernels get it added.
        const std::string who = step.node->describe();
        return st.message().find(who) == std::string::npos ? st.with_context(who) : st;
      }
      if (check_finite_ && step.device == 0) {
        for (size_t o = 0; o < step.out_slots.size(); ++o) {
          SEQRUN_TRY(
              check_finite_values(*step.node, *step.node->output(static_cast<int>(o)), step.out_args[o]));
        }
      }
    }
    if (profile != nullptr) {
      ProfileEvent e;
      e.op = step.op;
      e.node = step.name;
      e.kernel = step.label;
      e.category = step.kind == Step::Kind::Copy ? "copy" : "node";
      for (int s : step.in_slots) {
        if (s >= 0) e.input_shapes.push_back(im.slots[s].shape);
      }
      for (int s : step.out_slots) e.output_shapes.push_back(im.slots[s].shape);
      e.start_us = start;
      e.dur_us = profile->now_us() - start;
      profile->add(std::move(e));
    }
  }
  for (const OutputCopy& c : im.output_copies) {
    Tensor& out = outputs[c.output];
    const uint64_t bytes = im.slots[c.slot].bytes;
    if (bytes == 0) continue;
    const void* src = resolve(c.slot);
    const int d = im.device_of(c.slot);
    if (d == 0) {
      std::memmove(out.raw(), src, bytes);
    } else {
      SEQRUN_TRY(im.devices[d].allocator->copy_to_host(out.raw(), src, bytes));
    }
  }
  return Status::ok();
}

}  // namespace seqrun::runtime
