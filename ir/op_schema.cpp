// The op registry and signature checks shared by the verifier and the loader.
#include "ir/op_schema.h"

#include <mutex>

#include "ir/ops/ops.h"

namespace seqrun {

namespace {
const TensorType& absent_type() {
  static const TensorType t;
  return t;
}
}  // namespace

InferContext::InferContext(const Node& node) : node_(node) {}

const TensorType& InferContext::input_type(int i) const {
  return has_input(i) ? node_.input(i)->type() : absent_type();
}

const Tensor* InferContext::input_constant(int i) const {
  if (!has_input(i)) return nullptr;
  const Value* v = node_.input(i);
  return v->is_constant() ? &v->constant() : nullptr;
}

const AttrSpec* OpSchema::find_attr(const std::string& attr_name) const {
  for (const AttrSpec& a : attrs) {
    if (a.name == attr_name) return &a;
  }
  return nullptr;
}

const OpRegistry& OpRegistry::global() {
  static OpRegistry* registry = [] {
    auto* r = new OpRegistry();
    ops::register_elementwise_ops(*r);
    ops::register_reduce_ops(*r);
    ops::register_shape_ops(*r);
    ops::register_nn_ops(*r);
    ops::register_attention_ops(*r);
    ops::register_control_flow_ops(*r);
    ops::register_fused_ops(*r);
    ops::register_ssm_ops(*r);
    ops::register_recurrent_ops(*r);
    ops::register_misc_ops(*r);
    ops::register_recurrence_ops(*r);
    ops::register_mixed_chunk_attention_ops(*r);
    ops::register_chunked_attention_ops(*r);
    ops::register_lti_ops(*r);
    ops::register_cached_attention_ops(*r);
    return r;
  }();
  return *registry;
}

const OpSchema* OpRegistry::find(const std::string& op) const {
  auto it = schemas_.find(op);
  return it == schemas_.end() ? nullptr : &it->second;
}

std::vector<std::string> OpRegistry::op_names() const {
  std::vector<std::string> names;
  for (const auto& [name, schema] : schemas_) names.push_back(name);
  return names;
}

void OpRegistry::add(OpSchema schema) {
  std::string key = schema.name;
  schemas_[key] = std::move(schema);
}

Status verify_node_signature(const Node& node) {
  const OpSchema* s = node.schema();
  if (s == nullptr) return make_error("unknown op '{}' (node {})", node.op(), node.describe());
  int n_in = node.num_explicit_inputs();
  if (n_in < s->min_inputs || n_in > s->max_inputs) {
    if (s->min_inputs == s->max_inputs) {
      return make_error("{}: expects {} inputs, has {}", node.describe(), s->min_inputs, n_in);
    }
    return make_error(
        "{}: expects {} to {} inputs, has {}", node.describe(), s->min_inputs,
        s->max_inputs == OpSchema::kVariadic ? std::string("any") : std::to_string(s->max_inputs), n_in);
  }
  if (node.num_outputs() < s->min_outputs || node.num_outputs() > s->max_outputs) {
    return make_error("{}: expects {} to {} outputs, has {}", node.describe(), s->min_outputs, s->max_outputs,
                      node.num_outputs());
  }
  if (node.num_captures() < 0 || node.num_captures() > node.num_inputs()) {
    return make_error("{}: invalid capture count {}", node.describe(), node.num_captures());
  }
  for (const auto& [key, value] : node.attrs()) {
    const AttrSpec* spec = s->find_attr(key);
    if (spec == nullptr) {
      if (s->allow_extra_attrs) continue;
      return make_error("{}: unknown attribute '{}'", node.describe(), key);
    }
    bool ok = value.type() == spec->type ||
              (spec->type == AttrType::Float && value.type() == AttrType::Int);  // 1 for 1.0 is fine
    if (!ok) {
      return make_error("{}: attribute '{}' must be {}, is {}", node.describe(), key,
                        attr_type_name(spec->type), attr_type_name(value.type()));
    }
  }
  for (const AttrSpec& spec : s->attrs) {
    if (spec.required && !node.has_attr(spec.name)) {
      return make_error("{}: missing required attribute '{}'", node.describe(), spec.name);
    }
  }
  return Status::ok();
}

}  // namespace seqrun
