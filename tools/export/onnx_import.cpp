// ONNX ModelProto -> ir::Graph: scopes, initializers, typed inputs, nodes, nested bodies with
// implicit captures, then type inference and verification (the contract is in onnx_import.h).
#include "tools/export/onnx_import.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "ir/infer.h"
#include "ir/op_schema.h"
#include "ir/verify.h"
#include "tools/export/onnx_internal.h"

namespace seqrun::onnx_import {

namespace {

using detail::NodeEmitter;
using detail::NodeSpec;

constexpr int kMaxBodyDepth = 64;

struct ModelContext {
  std::string file;                   // the name errors start with
  std::string external_dir;           // where external data lives ("" = not allowed)
  std::map<std::string, int> opsets;  // domain ("" = default) -> version
  // Model-local functions by (domain, name); calls are inlined.
  std::map<std::pair<std::string, std::string>, const onnx::FunctionProto*> functions;
};

std::string domain_key(const std::string& domain) {
  return domain == "ai.onnx" ? "" : domain;
}
std::string domain_display(const std::string& domain) {
  return domain.empty() ? "ai.onnx" : domain;
}

// Names a graph reads without defining them (values of enclosing graphs), in first-use order.
// Names read by nested bodies count too, unless this graph defines them.
std::vector<std::string> free_names(const onnx::GraphProto& g) {
  std::unordered_set<std::string> defined;
  std::unordered_set<std::string> seen;
  std::vector<std::string> out;
  for (const auto& in : g.input()) defined.insert(in.name());
  for (const auto& init : g.initializer()) defined.insert(init.name());
  for (const auto& init : g.sparse_initializer()) defined.insert(init.values().name());
  auto use = [&](const std::string& name) {
    if (!name.empty() && defined.count(name) == 0 && seen.insert(name).second) out.push_back(name);
  };
  for (const auto& node : g.node()) {
    for (const auto& in : node.input()) use(in);
    for (const auto& attr : node.attribute()) {
      if (attr.has_g()) {
        for (const std::string& name : free_names(attr.g())) use(name);
      }
      for (const auto& sub : attr.graphs()) {
        for (const std::string& name : free_names(sub)) use(name);
      }
    }
    for (const auto& o : node.output()) defined.insert(o);
  }
  for (const auto& o : g.output()) use(o.name());
  return out;
}

Result<TensorType> type_from_proto(const onnx::TypeProto& type) {
  switch (type.value_case()) {
    case onnx::TypeProto::VALUE_NOT_SET:
      return TensorType();
    case onnx::TypeProto::kTensorType:
      break;
    case onnx::TypeProto::kSequenceType:
      return make_error("unsupported type sequence");
    case onnx::TypeProto::kOptionalType:
      return make_error("unsupported type optional");
    case onnx::TypeProto::kMapType:
      return make_error("unsupported type map");
    case onnx::TypeProto::kSparseTensorType:
      return make_error("unsupported type sparse tensor");
    default:
      return make_error("unsupported type (TypeProto case {})", static_cast<int>(type.value_case()));
  }
  const auto& tt = type.tensor_type();
  DType dtype = DType::undefined;
  if (tt.elem_type() != onnx::TensorProto::UNDEFINED) {
    std::optional<DType> d = detail::dtype_from_onnx(tt.elem_type());
    if (!d) return make_error("unsupported dtype {}", detail::onnx_dtype_name(tt.elem_type()));
    dtype = *d;
  }
  if (!tt.has_shape()) return TensorType::unknown_rank(dtype);
  std::vector<Dim> dims;
  for (const auto& d : tt.shape().dim()) {
    if (d.has_dim_value() && d.dim_value() >= 0) {
      dims.emplace_back(d.dim_value());
    } else if (d.has_dim_param() && !d.dim_param().empty()) {
      dims.push_back(Dim::symbol(d.dim_param()));
    } else {
      dims.push_back(Dim::unknown());
    }
  }
  return TensorType(dtype, std::move(dims));
}

onnx::AttributeProto::AttributeType attribute_type(const onnx::AttributeProto& a) {
  if (a.type() != onnx::AttributeProto::UNDEFINED) return a.type();
  // Very old files leave `type` unset: go by the field that holds the value.
  if (a.has_f()) return onnx::AttributeProto::FLOAT;
  if (a.has_i()) return onnx::AttributeProto::INT;
  if (a.has_s()) return onnx::AttributeProto::STRING;
  if (a.has_t()) return onnx::AttributeProto::TENSOR;
  if (a.has_g()) return onnx::AttributeProto::GRAPH;
  if (a.floats_size() > 0) return onnx::AttributeProto::FLOATS;
  if (a.ints_size() > 0) return onnx::AttributeProto::INTS;
  if (a.strings_size() > 0) return onnx::AttributeProto::STRINGS;
  return onnx::AttributeProto::UNDEFINED;
}

// Imports one ONNX graph (the model's or a body) into `graph`. Values are looked up by ONNX name
// in `scope_`; IR names equal the ONNX names except where a rewrite adds helper values, which get
// fresh names that no ONNX value of this graph uses.
class GraphImporter final : public NodeEmitter {
 public:
  GraphImporter(const ModelContext& model, Graph& graph, std::string where, int depth)
      : model_(model), graph_(graph), where_(std::move(where)), depth_(depth) {}

  void bind(const std::string& name, Value* v) { scope_[name] = v; }

  Status import_graph(const onnx::GraphProto& g, bool is_body) {
    for (const auto& vi : g.value_info()) value_info_[vi.name()] = &vi.type();
    for (const auto& vi : g.output()) value_info_[vi.name()] = &vi.type();
    for (const auto& vi : g.input()) reserved_.insert(vi.name());
    for (const auto& init : g.initializer()) reserved_.insert(init.name());
    for (const auto& node : g.node()) {
      for (const auto& o : node.output()) reserved_.insert(o);
    }
    if (g.sparse_initializer_size() > 0) {
      return make_error("{}unsupported dtype: sparse initializer '{}'", prefix(),
                        g.sparse_initializer(0).values().name());
    }
    for (const auto& init : g.initializer()) {
      auto t = detail::tensor_from_proto(init, model_.external_dir);
      if (!t) return make_error("{}initializer '{}': {}", prefix(), init.name(), t.status().message());
      if (scope_.count(init.name()) != 0) {
        return make_error("{}initializer '{}' is defined twice", prefix(), init.name());
      }
      scope_[init.name()] = graph_.add_constant(init.name(), std::move(t).value());
    }
    for (const auto& in : g.input()) {
      auto it = scope_.find(in.name());
      // An initializer that is also listed as an input (ONNX IR < 4 style) stays a constant.
      if (!is_body && it != scope_.end() && it->second->is_constant()) continue;
      auto type = type_from_proto(in.type());
      if (!type) return make_error("{}input '{}': {}", prefix(), in.name(), type.status().message());
      scope_[in.name()] = graph_.add_input(in.name(), std::move(type).value());
    }
    for (int i = 0; i < g.node_size(); ++i) SEQRUN_TRY(import_node(g.node(i), i));
    for (const auto& out : g.output()) {
      auto it = scope_.find(out.name());
      if (it == scope_.end())
        return make_error("{}output '{}' is not produced by any node", prefix(), out.name());
      graph_.add_output(it->second);
    }
    return Status::ok();
  }

  // --- NodeEmitter ---
  std::string context(const NodeSpec& spec) const override { return prefix() + describe(spec); }

  Value* constant(const std::string& hint, Tensor data) override {
    return graph_.add_constant(fresh_name(hint), std::move(data));
  }

  Result<Node*> helper(const NodeSpec& spec, const std::string& op, const std::vector<Value*>& inputs,
                       int num_outputs, std::map<std::string, Attribute> attrs) override {
    if (OpRegistry::global().find(op) == nullptr) return unsupported_op(spec, "its rewrite needs op " + op);
    std::string base =
        (spec.output_names.empty() || spec.output_names[0].empty() ? spec.onnx_op : spec.output_names[0]) +
        "/" + op;
    std::vector<std::string> names;
    for (int i = 0; i < num_outputs; ++i) names.push_back(fresh_name(base));
    Node* node = graph_.add_node(op, inputs, num_outputs, std::move(attrs), names);
    node->set_name(spec.name.empty() ? "" : spec.name + "/" + op);
    Status st = infer_node_types(*node);
    if (!st) return make_error("{}: {}", context(spec), st.message());
    return node;
  }

  Result<std::vector<Value*>> emit(NodeSpec& spec) override {
    const OpSchema* schema = OpRegistry::global().find(spec.op);
    if (schema == nullptr) return unsupported_op(spec);
    for (const auto& [key, value] : spec.attrs) {
      if (!schema->allow_extra_attrs && schema->find_attr(key) == nullptr) {
        return unsupported_attribute(spec, key, "seqrun's " + spec.op + " has no such attribute");
      }
    }
    while (!spec.inputs.empty() && spec.inputs.back() == nullptr) spec.inputs.pop_back();
    while (!spec.output_names.empty() && spec.output_names.back().empty()) spec.output_names.pop_back();
    std::vector<std::string> names = spec.output_names;
    for (const std::string& n : names) {
      if (!n.empty() && scope_.count(n) != 0)
        return make_error("{}: value '{}' is defined twice", context(spec), n);
    }
    for (std::string& n : names) {
      if (n.empty()) n = fresh_name(spec.onnx_op + "_unused_output");
    }
    std::vector<Value*> inputs = spec.inputs;
    inputs.insert(inputs.end(), spec.captures.begin(), spec.captures.end());
    Node* node = graph_.add_node(spec.op, inputs, static_cast<int>(names.size()), spec.attrs, names);
    node->set_name(spec.name);
    node->set_num_captures(static_cast<int>(spec.captures.size()));
    Status st = verify_node_signature(*node);
    if (!st) return make_error("{}: {}", context(spec), st.message());
    for (int i = 0; i < node->num_outputs(); ++i) {
      auto it =
          value_info_.find(spec.output_names.size() > static_cast<size_t>(i) ? spec.output_names[i] : "");
      if (it == value_info_.end()) continue;
      auto type = type_from_proto(*it->second);
      if (type) graph_.set_value_type(node->output(i), std::move(type).value());
    }
    st = infer_node_types(*node);
    if (!st) return make_error("{}: {}", context(spec), st.message());
    for (size_t i = 0; i < spec.output_names.size(); ++i) {
      if (!spec.output_names[i].empty()) scope_[spec.output_names[i]] = node->output(static_cast<int>(i));
    }
    return node->outputs();
  }

 private:
  std::string prefix() const { return model_.file + ": " + where_; }

  static std::string describe(const NodeSpec& spec) {
    if (!spec.name.empty()) return fmt::format("node '{}' (#{})", spec.name, spec.index);
    std::string out = spec.output_names.empty() ? "" : spec.output_names[0];
    return fmt::format("node #{} ({} -> '{}')", spec.index, spec.onnx_op, out);
  }

  std::string fresh_name(const std::string& base) {
    std::string candidate = base;
    for (int k = 1; reserved_.count(candidate) != 0 || graph_.find_value(candidate) != nullptr; ++k) {
      candidate = base + "_" + std::to_string(k);
    }
    reserved_.insert(candidate);
    return candidate;
  }

  Status import_node(const onnx::NodeProto& n, int index) {
    NodeSpec spec;
    std::string domain = domain_key(n.domain());
    auto function = model_.functions.find({domain, n.op_type()});
    if (function != model_.functions.end()) return inline_function(n, *function->second, index);
    spec.onnx_op = n.op_type();
    spec.op = n.op_type();
    spec.onnx_domain = domain_display(domain);
    spec.name = n.name();
    spec.index = index;
    spec.output_names.assign(n.output().begin(), n.output().end());
    auto opset = model_.opsets.find(domain);
    if (opset == model_.opsets.end()) {
      return make_error("{}: unsupported op {}::{} (the model imports no opset for domain '{}')",
                        context(spec), spec.onnx_domain, spec.onnx_op, spec.onnx_domain);
    }
    spec.opset = opset->second;
    if (domain.empty()) {
      if (spec.opset > detail::kMaxDefaultOpset || spec.opset < 1) {
        return unsupported_op(spec, fmt::format("seqrun knows opsets 1..{}", detail::kMaxDefaultOpset));
      }
    } else if (domain != "ai.onnx.preview") {
      return unsupported_op(spec);
    }
    if (domain.empty() && spec.onnx_op == "Constant") return import_constant(n, spec);

    for (const auto& in : n.input()) {
      if (in.empty()) {
        spec.inputs.push_back(nullptr);
        continue;
      }
      auto it = scope_.find(in);
      if (it == scope_.end()) {
        return make_error("{}: input '{}' is not defined before this node", context(spec), in);
      }
      spec.inputs.push_back(it->second);
    }

    std::vector<const onnx::AttributeProto*> bodies;
    for (const auto& a : n.attribute()) {
      auto type = attribute_type(a);
      if (!a.ref_attr_name().empty()) {
        return unsupported_attribute(spec, a.name(), "references a function attribute");
      }
      if (type == onnx::AttributeProto::GRAPH) {
        bodies.push_back(&a);
        continue;
      }
      auto value = convert_attribute(a, type, spec);
      if (!value) return value.status();
      spec.attrs[a.name()] = std::move(value).value();
    }
    if (!bodies.empty()) SEQRUN_TRY(import_bodies(bodies, spec));

    auto upgraded = detail::upgrade_legacy_node(spec, *this);
    if (!upgraded) return upgraded.status();
    if (upgraded.value().has_value()) return Status::ok();
    auto emitted = emit(spec);
    return emitted ? Status::ok() : emitted.status();
  }

  // Expands a call of a model-local function in place: the function's nodes are imported as if
  // they were written here, with its formal inputs/outputs bound to the call's values, its
  // internal values given fresh names, and attribute references resolved from the call.
  Status inline_function(const onnx::NodeProto& call, const onnx::FunctionProto& f, int index) {
    NodeSpec spec;
    spec.onnx_op = call.op_type();
    spec.onnx_domain = domain_display(domain_key(call.domain()));
    spec.name = call.name();
    spec.index = index;
    spec.output_names.assign(call.output().begin(), call.output().end());
    if (++inline_depth_ > kMaxBodyDepth) {
      return unsupported_op(spec, "model-local functions nest (or recurse) too deeply");
    }
    std::unordered_map<std::string, std::string> rename;
    for (int i = 0; i < f.input_size(); ++i) rename[f.input(i)] = i < call.input_size() ? call.input(i) : "";
    std::string prefix = (call.name().empty() ? f.name() : call.name()) + "/";
    for (int i = 0; i < f.output_size(); ++i) {
      rename[f.output(i)] = i < call.output_size() ? call.output(i) : fresh_name(prefix + f.output(i));
    }
    std::unordered_map<std::string, const onnx::AttributeProto*> call_attrs;
    for (const auto& a : call.attribute()) call_attrs[a.name()] = &a;
    for (const auto& fnode : f.node()) {
      onnx::NodeProto copy = fnode;
      copy.set_name(prefix + fnode.name());
      for (int i = 0; i < copy.input_size(); ++i) {
        if (copy.input(i).empty()) continue;
        auto it = rename.find(copy.input(i));
        if (it == rename.end()) {
          return make_error("{}: function '{}' reads '{}', which it does not define", context(spec), f.name(),
                            copy.input(i));
        }
        copy.set_input(i, it->second);
      }
      for (int i = 0; i < copy.output_size(); ++i) {
        if (copy.output(i).empty()) continue;
        auto it = rename.find(copy.output(i));
        std::string name = it != rename.end() ? it->second : fresh_name(prefix + copy.output(i));
        rename[copy.output(i)] = name;
        copy.set_output(i, name);
      }
      copy.clear_attribute();
      for (const auto& a : fnode.attribute()) {
        if (a.has_g() || a.graphs_size() > 0) {
          return unsupported_attribute(spec, a.name(), "graph attributes inside model-local functions");
        }
        if (a.ref_attr_name().empty()) {
          *copy.add_attribute() = a;
          continue;
        }
        auto ref = call_attrs.find(a.ref_attr_name());
        if (ref == call_attrs.end()) continue;  // not given by the call: the op's default applies
        onnx::AttributeProto* resolved = copy.add_attribute();
        *resolved = *ref->second;
        resolved->set_name(a.name());
      }
      Status st = import_node(copy, index);
      if (!st) return st;
    }
    --inline_depth_;
    return Status::ok();
  }

  Result<Attribute> convert_attribute(const onnx::AttributeProto& a, onnx::AttributeProto::AttributeType type,
                                      const NodeSpec& spec) {
    switch (type) {
      case onnx::AttributeProto::FLOAT:
        return Attribute(a.f());
      case onnx::AttributeProto::INT:
        return Attribute(static_cast<int64_t>(a.i()));
      case onnx::AttributeProto::STRING:
        return Attribute(std::string(a.s()));
      case onnx::AttributeProto::FLOATS:
        return Attribute(std::vector<float>(a.floats().begin(), a.floats().end()));
      case onnx::AttributeProto::INTS:
        return Attribute(std::vector<int64_t>(a.ints().begin(), a.ints().end()));
      case onnx::AttributeProto::STRINGS:
        return Attribute(std::vector<std::string>(a.strings().begin(), a.strings().end()));
      case onnx::AttributeProto::TENSOR: {
        auto t = detail::tensor_from_proto(a.t(), model_.external_dir);
        if (!t) {
          if (t.status().message().rfind("unsupported ", 0) == 0) {
            return make_error("{}: {} in attribute '{}'", context(spec), t.status().message(), a.name());
          }
          return make_error("{}: attribute '{}': {}", context(spec), a.name(), t.status().message());
        }
        return Attribute(std::move(t).value());
      }
      default:
        return unsupported_attribute(spec, a.name(),
                                     fmt::format("attribute type {} is not supported",
                                                 onnx::AttributeProto::AttributeType_Name(type)));
    }
  }

  Status import_constant(const onnx::NodeProto& n, NodeSpec& spec) {
    if (n.output_size() != 1 || n.attribute_size() != 1) {
      return make_error("{}: Constant needs exactly one output and one value attribute", context(spec));
    }
    const auto& a = n.attribute(0);
    Tensor t;
    if (a.name() == "value") {
      auto converted = detail::tensor_from_proto(a.t(), model_.external_dir);
      if (!converted) {
        if (converted.status().message().rfind("unsupported ", 0) == 0) {
          return make_error("{}: {} in Constant", context(spec), converted.status().message());
        }
        return make_error("{}: value: {}", context(spec), converted.status().message());
      }
      t = std::move(converted).value();
    } else if (a.name() == "value_float") {
      t = Tensor::scalar<float>(a.f());
    } else if (a.name() == "value_floats") {
      t = Tensor::from_vector<float>({a.floats_size()},
                                     std::vector<float>(a.floats().begin(), a.floats().end()));
    } else if (a.name() == "value_int") {
      t = Tensor::scalar<int64_t>(a.i());
    } else if (a.name() == "value_ints") {
      t = Tensor::from_vector<int64_t>({a.ints_size()},
                                       std::vector<int64_t>(a.ints().begin(), a.ints().end()));
    } else if (a.name() == "value_string" || a.name() == "value_strings") {
      return make_error("{}: unsupported dtype STRING in Constant", context(spec));
    } else if (a.name() == "sparse_value") {
      return unsupported_attribute(spec, a.name(), "sparse constants are not supported");
    } else {
      return unsupported_attribute(spec, a.name(), "not a Constant value attribute");
    }
    const std::string& name = n.output(0);
    if (scope_.count(name) != 0) return make_error("{}: value '{}' is defined twice", context(spec), name);
    scope_[name] = graph_.add_constant(name, std::move(t));
    return Status::ok();
  }

  // Imports the node's graph attributes. Every body gets the same captures, in the same order:
  // the union of the non-constant outer values any of them reads. Outer constants are copied
  // into each body as constants (no capture), so shape inference inside the body sees them.
  Status import_bodies(const std::vector<const onnx::AttributeProto*>& bodies, NodeSpec& spec) {
    if (depth_ + 1 > kMaxBodyDepth) {
      return make_error("{}: nested graphs deeper than {} levels", context(spec), kMaxBodyDepth);
    }
    std::vector<std::string> names;
    std::unordered_set<std::string> seen;
    for (const auto* a : bodies) {
      for (const std::string& name : free_names(a->g())) {
        if (seen.insert(name).second) names.push_back(name);
      }
    }
    std::vector<Value*> outer;
    for (const std::string& name : names) {
      auto it = scope_.find(name);
      if (it == scope_.end()) {
        return make_error("{}: a body reads '{}', which is not defined before this node", context(spec),
                          name);
      }
      outer.push_back(it->second);
      if (!it->second->is_constant()) spec.captures.push_back(it->second);
    }
    for (const auto* a : bodies) {
      const onnx::GraphProto& proto = a->g();
      auto body = std::make_shared<Graph>(proto.name().empty() ? a->name() : proto.name());
      GraphImporter child(model_, *body, where_ + describe(spec) + " body '" + a->name() + "': ", depth_ + 1);
      for (size_t i = 0; i < names.size(); ++i) {
        Value* v = outer[i]->is_constant() ? body->add_constant(names[i], outer[i]->constant())
                                           : body->add_capture(names[i], outer[i]->type());
        child.bind(names[i], v);
      }
      SEQRUN_TRY(child.import_graph(proto, true));
      spec.attrs[a->name()] = Attribute(Attribute::GraphPtr(body));
    }
    return Status::ok();
  }

  const ModelContext& model_;
  Graph& graph_;
  std::string where_;
  int depth_;
  std::unordered_map<std::string, Value*> scope_;
  std::unordered_set<std::string> reserved_;
  std::unordered_map<std::string, const onnx::TypeProto*> value_info_;
  int inline_depth_ = 0;
};

Result<std::unique_ptr<Graph>> import_model(const onnx::ModelProto& model, ModelContext& ctx) {
  if (!model.has_graph()) return make_error("{}: not an ONNX model (no graph)", ctx.file);
  for (const auto& op : model.opset_import())
    ctx.opsets[domain_key(op.domain())] = static_cast<int>(op.version());
  if (model.opset_import_size() == 0) ctx.opsets[""] = 1;  // IR version < 3 files: opset 1
  for (const auto& f : model.functions()) ctx.functions[{domain_key(f.domain()), f.name()}] = &f;
  const onnx::GraphProto& g = model.graph();
  auto graph = std::make_unique<Graph>(g.name().empty() ? "main" : g.name());
  GraphImporter importer(ctx, *graph, "", 0);
  SEQRUN_TRY(importer.import_graph(g, false));
  Status st = infer_graph_types(*graph);
  if (!st) return st.with_context(ctx.file);
  st = verify_graph(*graph);
  if (!st) return st.with_context(ctx.file);
  return graph;
}

}  // namespace

namespace detail {

Status NodeEmitter::unsupported_attribute(const NodeSpec& spec, const std::string& attr,
                                          const std::string& why) const {
  return make_error("{}: unsupported attribute '{}' of {}::{} (opset {}): {}", context(spec), attr,
                    spec.onnx_domain, spec.onnx_op, spec.opset, why);
}

Status NodeEmitter::unsupported_op(const NodeSpec& spec, const std::string& why) const {
  std::string msg = fmt::format("{}: unsupported op {}::{} (opset {})", context(spec), spec.onnx_domain,
                                spec.onnx_op, spec.opset);
  if (!why.empty()) msg += ": " + why;
  return Status::error(msg);
}

}  // namespace detail

Result<std::unique_ptr<Graph>> import_onnx_bytes(const std::string& bytes, const std::string& name,
                                                 const ImportOptions& options) {
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes)) {
    return make_error("{}: not a valid ONNX model (protobuf parse failed; truncated or not ONNX)", name);
  }
  ModelContext ctx;
  ctx.file = name;
  ctx.external_dir = options.external_data_dir;
  return import_model(model, ctx);
}

Result<std::unique_ptr<Graph>> import_onnx_file(const std::string& path, const ImportOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("{}: cannot open file", path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (!in.good() && !in.eof()) return make_error("{}: read error", path);
  ImportOptions opts = options;
  if (opts.external_data_dir.empty()) {
    std::string dir = std::filesystem::path(path).parent_path().string();
    opts.external_data_dir = dir.empty() ? "." : dir;
  }
  return import_onnx_bytes(buffer.str(), path, opts);
}

}  // namespace seqrun::onnx_import
