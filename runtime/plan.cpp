// ExecutionPlan::build: placement, device copies, aliases, liveness, in-place decisions and the arena layout.
#include "runtime/plan.h"

#include <algorithm>
#include <map>
#include <unordered_map>

#include "runtime/executor.h"
#include "runtime/plan_internal.h"

namespace seqrun::runtime {

using namespace plan_detail;
using backends::KernelInfo;

namespace {

// Ops whose output is the same bytes as input 0 under another shape: they become aliases, never copies.
bool is_alias_op(const std::string& op) {
  return op == "Reshape" || op == "Squeeze" || op == "Unsqueeze" || op == "Flatten" || op == "Identity";
}

std::string node_label(const Node& node) {
  if (!node.name().empty()) return node.name();
  return node.num_outputs() > 0 ? node.output(0)->name() : node.op();
}

}  // namespace

ExecutionPlan::~ExecutionPlan() {
  if (!impl_) return;
  for (size_t d = 0; d < impl_->devices.size(); ++d) {
    Device& dev = impl_->devices[d];
    if (dev.arena != nullptr) dev.allocator->deallocate(dev.arena);
    if (dev.workspace != nullptr) dev.allocator->deallocate(dev.workspace);
  }
  for (auto& [backend, ptr] : impl_->device_constants) backend->deallocate(ptr);
}

std::vector<std::string> ExecutionPlan::device_names() const {
  std::vector<std::string> names;
  if (impl_) {
    for (const Device& d : impl_->devices) names.push_back(backends::device_name(d.kind));
  }
  return names;
}

Result<std::unique_ptr<ExecutionPlan>> ExecutionPlan::build(std::unique_ptr<Graph> graph,
                                                            const PlanOptions& options) {
  if (!graph) return make_error("ExecutionPlan::build: the graph is null");
  for (const Value* in : graph->inputs()) {
    if (!in->type().is_static() || in->type().dtype() == DType::undefined) {
      return make_error(
          "ExecutionPlan::build: input '{}' has the type {}; bind the input shapes first "
          "(runtime::specialize_graph)",
          in->name(), in->type().to_string());
    }
  }
  std::unique_ptr<ExecutionPlan> plan(new ExecutionPlan());
  plan->graph_ = std::move(graph);
  plan->threads_ = std::max(1, options.threads);
  plan->check_finite_ = options.check_finite;
  plan->impl_ = std::make_unique<Impl>();

  // Data-dependent shapes cannot be planned: the escape hatch runs the graph with the reference executor.
  for (const Node* node : plan->graph_->nodes()) {
    for (const Value* out : node->outputs()) {
      const bool used = !out->uses().empty() || out->is_graph_output();
      if (used && !out->type().is_static()) {
        plan->reference_fallback_ = true;
        plan->report_.uses_reference_executor = true;
        plan->report_.fallback_reason = "value '" + out->name() + "' (" + node->describe() +
                                        ") has a data-dependent shape " + out->type().to_string();
        break;
      }
    }
    if (plan->reference_fallback_) break;
  }
  for (const Value* v : plan->graph_->values()) {
    if (v->is_constant()) plan->report_.weight_bytes += v->constant().nbytes();
  }
  if (plan->reference_fallback_) {
    for (const Node* node : plan->graph_->nodes()) {
      plan->placement_.push_back({node->op(), node_label(*node), "reference-executor", "reference"});
    }
    return plan;
  }
  SEQRUN_TRY(plan->build_steps(options));
  return plan;
}

Status ExecutionPlan::build_steps(const PlanOptions& options) {
  Impl& im = *impl_;
  std::vector<Backend*> backend_list = options.backends;
  if (backend_list.empty()) backend_list.push_back(&backends::cpu_backend());
  // Device 0 is always the host: graph inputs, outputs and constants live there.
  im.devices.push_back(Device{});
  for (Backend* b : backend_list) {
    if (b == nullptr) return make_error("ExecutionPlan::build: null backend in the list");
    int d = im.device_index(b->device());
    if (d < 0) {
      im.devices.push_back(Device{});
      d = static_cast<int>(im.devices.size()) - 1;
      im.devices[d].kind = b->device();
    }
    if (im.devices[d].allocator == nullptr) im.devices[d].allocator = b;
  }

  const Graph& g = *graph_;
  std::unordered_map<const Value*, int> slot_of;
  auto add_slot = [&](Slot s) {
    im.slots.push_back(std::move(s));
    return static_cast<int>(im.slots.size()) - 1;
  };
  auto value_slot = [&](const Value* v) -> Result<int> {
    auto it = slot_of.find(v);
    if (it != slot_of.end()) return it->second;
    // Only constants are created on first use; inputs and node outputs are registered up front.
    if (!v->is_constant()) return make_error("value '{}' is read before it is produced", v->name());
    Slot s;
    s.name = v->name();
    s.value = v;
    s.dtype = v->constant().dtype();
    s.shape = v->constant().shape();
    s.bytes = v->constant().nbytes();
    s.home = Home::Constant;
    s.constant = v->constant().raw();
    int id = add_slot(std::move(s));
    slot_of[v] = id;
    return id;
  };
  for (size_t i = 0; i < g.inputs().size(); ++i) {
    const Value* v = g.inputs()[i];
    Slot s;
    s.name = v->name();
    s.value = v;
    s.dtype = v->type().dtype();
    s.shape = *v->type().static_shape();
    s.bytes = static_cast<uint64_t>(num_elements(s.shape)) * dtype_size(s.dtype);
    s.home = Home::Input;
    s.index = static_cast<int>(i);
    slot_of[v] = add_slot(std::move(s));
    report_.pinned_input_bytes += im.slots.back().bytes;
  }

  // A slot holding `src`'s bytes on device `d`: a weight is uploaded now, anything else is copied by a step
  // inserted before the first reader on that device.
  std::map<std::pair<int, int>, int> copies;
  auto slot_on_device = [&](int src, int d) -> Result<int> {
    const int src_dev = im.device_of(src);
    if (src_dev == d) return src;
    auto it = copies.find({src, d});
    if (it != copies.end()) return it->second;
    const Slot from = im.slots[src];  // a copy: adding slots below may move the vector
    const int r = im.root_of(src);
    Slot s;
    s.name = from.name + "@" + backends::device_name(im.devices[d].kind);
    s.dtype = from.dtype;
    s.shape = from.shape;
    s.bytes = from.bytes;
    s.device = d;
    if (src_dev != 0 && d != 0) {
      return make_error("value '{}': no copy path from {} to {}", from.name,
                        backends::device_name(im.devices[src_dev].kind),
                        backends::device_name(im.devices[d].kind));
    }
    Backend* device_backend = im.devices[d == 0 ? src_dev : d].allocator;
    if (im.slots[r].home == Home::Constant && d != 0) {
      SEQRUN_ASSIGN(void* p, device_backend->allocate(std::max<uint64_t>(from.bytes, 1)));
      im.device_constants.emplace_back(device_backend, p);
      if (from.bytes > 0) SEQRUN_TRY(device_backend->copy_to_device(p, im.slots[r].constant, from.bytes));
      s.home = Home::Constant;
      s.constant = p;
      report_.device_weight_bytes += from.bytes;
      const int id = add_slot(std::move(s));
      copies[{src, d}] = id;
      return id;
    }
    s.home = Home::Arena;
    s.def_step = static_cast<int>(im.steps.size());
    const int id = add_slot(std::move(s));
    copies[{src, d}] = id;
    Step step;
    step.kind = Step::Kind::Copy;
    step.device = d;
    step.backend = device_backend;
    step.copy_to_host = d == 0;
    step.in_slots = {src};
    step.out_slots = {id};
    step.op = "Copy";
    step.name = from.name;
    step.label = std::string("copy:") + backends::device_name(im.devices[src_dev].kind) + "->" +
                 backends::device_name(im.devices[d].kind);
    placement_.push_back({step.op, step.name, device_backend->name(), step.label});
    im.steps.push_back(std::move(step));
    ++report_.copy_steps;
    return id;
  };

  const ExecOptions exec_options{options.check_finite};
  auto run_body = [exec_options](const Graph& body, const std::vector<Tensor>& ins,
                                 const std::vector<Tensor>& caps) -> Result<std::vector<Tensor>> {
    return ReferenceExecutor(exec_options).run_body(body, ins, caps);
  };

  for (const Node* node : g.nodes()) {
    // Aliases: no kernel, no bytes; the output is a second name for input 0's buffer.
    if (is_alias_op(node->op()) && node->num_outputs() == 1 && node->input(0) != nullptr &&
        node->output(0)->type().is_static()) {
      SEQRUN_ASSIGN(const int in, value_slot(node->input(0)));
      const Value* out = node->output(0);
      Slot s;
      s.name = out->name();
      s.value = out;
      s.dtype = out->type().dtype();
      s.shape = *out->type().static_shape();
      s.bytes = static_cast<uint64_t>(num_elements(s.shape)) * dtype_size(s.dtype);
      if (s.dtype == im.slots[in].dtype && s.bytes == im.slots[in].bytes) {
        s.alias_of = in;
        s.device = im.device_of(in);
        const int id = add_slot(std::move(s));
        slot_of[out] = id;
        Step step;
        step.kind = Step::Kind::Alias;
        step.node = node;
        step.device = im.slots[id].device;
        step.in_slots = {in};
        step.out_slots = {id};
        step.op = node->op();
        step.name = node_label(*node);
        step.label = "alias";
        im.steps.push_back(std::move(step));
        ++report_.alias_values;
        placement_.push_back({node->op(), node_label(*node), "-", "alias"});
        continue;
      }
    }

    KernelInfo info;
    info.node = node;
    info.threads = std::max(1, options.threads);
    info.run_body = run_body;
    std::vector<int> in_slots;
    for (const Value* in : node->inputs()) {
      if (in == nullptr) {
        in_slots.push_back(-1);
        info.inputs.push_back(TensorArg{});
        continue;
      }
      SEQRUN_ASSIGN(const int s, value_slot(in));
      in_slots.push_back(s);
      const Slot& r = im.slots[im.root_of(s)];
      void* data = r.home == Home::Constant && r.device == 0 ? const_cast<void*>(r.constant) : nullptr;
      info.inputs.push_back(TensorArg{im.slots[s].dtype, im.slots[s].shape, data});
    }
    for (const Value* out : node->outputs()) {
      std::optional<Shape> shape = out->type().static_shape();
      info.outputs.push_back(TensorArg{out->type().dtype(), shape ? *shape : Shape{}, nullptr});
    }
    std::unique_ptr<Kernel> kernel;
    Backend* chosen = nullptr;
    for (Backend* b : backend_list) {
      kernel = b->kernels().create(info);
      if (kernel) {
        chosen = b;
        break;
      }
    }
    if (!kernel) {
      std::string tried;
      for (Backend* b : backend_list) tried += (tried.empty() ? "" : ", ") + b->name();
      return make_error("{}: no backend has a kernel for op '{}' with these types (tried {})",
                        node->describe(), node->op(), tried);
    }
    SEQRUN_TRY(kernel->prepare(info).with_context(node->describe()));
    const int d = im.device_index(chosen->device());
    for (int& s : in_slots) {
      if (s < 0) continue;
      SEQRUN_ASSIGN(s, slot_on_device(s, d));
    }
    Step step;
    step.kind = Step::Kind::Kernel;
    step.node = node;
    step.device = d;
    step.backend = chosen;
    step.in_slots = in_slots;
    for (int i = 0; i < node->num_outputs(); ++i) {
      const Value* out = node->output(i);
      Slot s;
      s.name = out->name();
      s.value = out;
      s.dtype = info.outputs[i].dtype;
      s.shape = info.outputs[i].shape;
      s.device = d;
      s.def_step = static_cast<int>(im.steps.size());
      if (out->type().is_static()) {
        s.bytes = static_cast<uint64_t>(num_elements(s.shape)) * dtype_size(s.dtype);
        s.home = Home::Arena;
      }
      const int id = add_slot(std::move(s));
      slot_of[out] = id;
      step.out_slots.push_back(id);
    }
    im.devices[d].workspace_bytes = std::max(im.devices[d].workspace_bytes, kernel->workspace_bytes());
    step.op = node->op();
    step.name = node_label(*node);
    step.label = kernel->label();
    step.kernel = std::move(kernel);
    placement_.push_back({node->op(), step.name, chosen->name(), step.label});
    im.steps.push_back(std::move(step));
  }

  // Graph outputs: a host arena value becomes the output tensor itself; everything else is copied at the end.
  for (size_t j = 0; j < g.outputs().size(); ++j) {
    const Value* v = g.outputs()[j];
    SEQRUN_ASSIGN(const int s, value_slot(v));
    Slot& r = im.slots[im.root_of(s)];
    if (r.home == Home::Arena && r.device == 0) {
      r.home = Home::Output;
      r.index = static_cast<int>(j);
    } else {
      im.output_copies.push_back({s, static_cast<int>(j)});
    }
    report_.pinned_output_bytes += im.slots[s].bytes;
  }

  im.root.resize(im.slots.size());
  for (size_t s = 0; s < im.slots.size(); ++s) im.root[s] = im.root_of(static_cast<int>(s));

  // Arena buffers and their lifetimes: from the writing step to the last step reading any alias of them.
  const int end_step = static_cast<int>(im.steps.size());
  std::vector<int> buffer_of_slot(im.slots.size(), -1);
  for (size_t s = 0; s < im.slots.size(); ++s) {
    Slot& sl = im.slots[s];
    if (sl.alias_of >= 0 || sl.home != Home::Arena) continue;
    buffer_of_slot[s] = static_cast<int>(buffers_.size());
    sl.index = static_cast<int>(buffers_.size());
    buffers_.push_back(PlannedBuffer{sl.name, sl.device, sl.bytes, 0, sl.def_step, sl.def_step, -1});
  }
  auto arena_buffer = [&](int s) { return s < 0 ? -1 : buffer_of_slot[im.root[s]]; };
  for (int t = 0; t < end_step; ++t) {
    const Step& step = im.steps[t];
    StepInfo info;
    info.kind = step.kind == Step::Kind::Kernel  ? "kernel"
                : step.kind == Step::Kind::Alias ? "alias"
                                                 : "copy";
    info.node = step.name;
    if (step.kind != Step::Kind::Alias) {
      for (int s : step.in_slots) {
        const int b = arena_buffer(s);
        info.reads.push_back(b);
        if (b >= 0) buffers_[b].last_step = std::max(buffers_[b].last_step, t);
      }
      for (int s : step.out_slots) info.writes.push_back(arena_buffer(s));
    }
    step_infos_.push_back(std::move(info));
  }
  StepInfo final_copies;
  final_copies.kind = "outputs";
  for (const OutputCopy& c : im.output_copies) {
    const int b = arena_buffer(c.slot);
    final_copies.reads.push_back(b);
    if (b >= 0) buffers_[b].last_step = end_step;
  }
  step_infos_.push_back(std::move(final_copies));

  // In place: an output over an input whose buffer dies here, when the kernel allows it.
  for (int t = 0; t < end_step; ++t) {
    const Step& step = im.steps[t];
    if (step.kind != Step::Kind::Kernel) continue;
    std::vector<int> taken;
    for (size_t o = 0; o < step.out_slots.size(); ++o) {
      const int bo = arena_buffer(step.out_slots[o]);
      if (bo < 0) continue;
      for (size_t i = 0; i < step.in_slots.size(); ++i) {
        const int bi = arena_buffer(step.in_slots[i]);
        if (bi < 0 || buffers_[bi].last_step != t || buffers_[bi].device != buffers_[bo].device) continue;
        if (im.slots[step.in_slots[i]].bytes != buffers_[bo].size_bytes) continue;
        if (std::find(taken.begin(), taken.end(), bi) != taken.end()) continue;
        bool shared = false;  // another input reading the same buffer would see it half overwritten
        for (size_t k = 0; k < step.in_slots.size(); ++k) {
          if (k != i && arena_buffer(step.in_slots[k]) == bi) shared = true;
        }
        if (shared || !step.kernel->can_run_in_place(static_cast<int>(o), static_cast<int>(i))) continue;
        buffers_[bo].inplace_of = bi;
        taken.push_back(bi);
        break;
      }
    }
  }

  // Graph outputs a kernel may write over the graph input it reads (the caller binds one buffer to both, e.g.
  // a decoder's KV cache): the kernel's own can_run_in_place, when nothing else reads that input.
  output_alias_input_.assign(graph_->outputs().size(), -1);
  for (const Step& step : im.steps) {
    if (step.kind != Step::Kind::Kernel) continue;
    for (size_t o = 0; o < step.out_slots.size(); ++o) {
      const Slot& out = im.slots[step.out_slots[o]];
      if (out.home != Home::Output) continue;
      for (size_t i = 0; i < step.in_slots.size(); ++i) {
        if (step.in_slots[i] < 0) continue;
        const Slot& in = im.slots[step.in_slots[i]];
        if (in.home != Home::Input || in.value == nullptr || in.value->uses().size() != 1) continue;
        if (step.kernel->can_run_in_place(static_cast<int>(o), static_cast<int>(i))) {
          output_alias_input_[out.index] = in.index;
        }
      }
    }
  }

  // Offsets: one arena per device.
  for (size_t d = 0; d < im.devices.size(); ++d) {
    std::vector<int> ids;
    std::vector<TensorLifetime> lifetimes;
    std::vector<int> local(buffers_.size(), -1);
    for (size_t b = 0; b < buffers_.size(); ++b) {
      if (buffers_[b].device != static_cast<int>(d)) continue;
      local[b] = static_cast<int>(ids.size());
      ids.push_back(static_cast<int>(b));
    }
    for (int b : ids) {
      const PlannedBuffer& pb = buffers_[b];
      lifetimes.push_back(TensorLifetime{pb.size_bytes, pb.first_step, pb.last_step,
                                         pb.inplace_of >= 0 ? local[pb.inplace_of] : -1});
    }
    const MemoryPlan mp = plan_arena_offsets(lifetimes);
    for (size_t k = 0; k < ids.size(); ++k) buffers_[ids[k]].offset = mp.offsets[k];
    Device& dev = im.devices[d];
    dev.arena_bytes = mp.arena_bytes;
    report_.arena_bytes += mp.arena_bytes;
    report_.lower_bound_bytes += mp.lower_bound_bytes;
    report_.no_reuse_bytes += mp.no_reuse_bytes;
    report_.arena_buffers += static_cast<int>(ids.size());
    report_.workspace_bytes += dev.workspace_bytes;
    const bool needs_memory = !ids.empty() || dev.workspace_bytes > 0;
    if (!needs_memory) continue;
    if (dev.allocator == nullptr) {
      // Only the host can lack a backend, and host buffers only come from host kernels.
      return make_error("graph '{}': host buffers are needed but no backend allocates host memory", g.name());
    }
    SEQRUN_ASSIGN(void* arena, dev.allocator->allocate(std::max<uint64_t>(dev.arena_bytes, 64)));
    dev.arena = static_cast<unsigned char*>(arena);
    if (dev.workspace_bytes > 0) {
      SEQRUN_ASSIGN(dev.workspace, dev.allocator->allocate(dev.workspace_bytes));
    }
  }
  for (const PlannedBuffer& b : buffers_) {
    if (b.inplace_of >= 0 && buffers_[b.inplace_of].offset == b.offset) ++report_.inplace_steps;
  }

  // Argument lists are built once; a run only fills in the data pointers.
  for (Step& step : im.steps) {
    for (int s : step.in_slots) {
      step.in_args.push_back(s < 0 ? TensorArg{} : TensorArg{im.slots[s].dtype, im.slots[s].shape, nullptr});
    }
    for (int s : step.out_slots)
      step.out_args.push_back(TensorArg{im.slots[s].dtype, im.slots[s].shape, nullptr});
  }
  return Status::ok();
}

}  // namespace seqrun::runtime
