// Legacy ONNX opset forms -> the newest form the IR's ops follow: attributes that later opsets take
// as inputs become constant inputs, removed attributes are dropped (or rejected when they change the
// result), and ops that were replaced (Upsample, Scatter, Scan-8, 2-D-coercing Softmax) are rewritten.
#include <cmath>
#include <set>

#include "ir/infer.h"
#include "tools/export/onnx_internal.h"

namespace seqrun::onnx_import::detail {

namespace {

using Upgraded = Result<std::optional<std::vector<Value*>>>;
const std::optional<std::vector<Value*>> kEmitAsIs = std::nullopt;

void set_input(NodeSpec& spec, size_t index, Value* v) {
  if (spec.inputs.size() <= index) spec.inputs.resize(index + 1, nullptr);
  spec.inputs[index] = v;
}

Value* input_or_null(const NodeSpec& spec, size_t index) {
  return index < spec.inputs.size() ? spec.inputs[index] : nullptr;
}

const Attribute* find_attr(const NodeSpec& spec, const std::string& key) {
  auto it = spec.attrs.find(key);
  return it == spec.attrs.end() ? nullptr : &it->second;
}

int64_t int_attr(const NodeSpec& spec, const std::string& key, int64_t fallback) {
  const Attribute* a = find_attr(spec, key);
  return a != nullptr && a->type() == AttrType::Int ? a->i() : fallback;
}

// Moves the int-list attribute `key` (when present) to a constant i64 input at `index`.
Status ints_attr_to_input(NodeSpec& spec, NodeEmitter& emitter, const std::string& key, size_t index) {
  const Attribute* a = find_attr(spec, key);
  if (a == nullptr) return Status::ok();
  if (a->type() != AttrType::Ints) return emitter.unsupported_attribute(spec, key, "expected a list of ints");
  std::vector<int64_t> values = a->ints();
  Tensor t = Tensor::from_vector<int64_t>({static_cast<int64_t>(values.size())}, values);
  set_input(spec, index, emitter.constant(spec.onnx_op + "_" + key, std::move(t)));
  spec.attrs.erase(key);
  return Status::ok();
}

// A scalar constant of `dtype` (the dtype of the tensor it will combine with; f32 when unknown).
Tensor scalar_of(DType dtype, double value) {
  Tensor f = Tensor::scalar<double>(value);
  if (dtype == DType::undefined) dtype = DType::f32;
  return f.cast(dtype);
}

// Moves the float attribute `key` (when present) to a scalar constant input of x's dtype.
Status float_attr_to_input(NodeSpec& spec, NodeEmitter& emitter, const std::string& key, size_t index) {
  const Attribute* a = find_attr(spec, key);
  if (a == nullptr) return Status::ok();
  double value = a->type() == AttrType::Float ? a->f() : static_cast<double>(a->i());
  DType dtype =
      spec.inputs.empty() || spec.inputs[0] == nullptr ? DType::f32 : spec.inputs[0]->type().dtype();
  set_input(spec, index, emitter.constant(spec.onnx_op + "_" + key, scalar_of(dtype, value)));
  spec.attrs.erase(key);
  return Status::ok();
}

bool is_empty_constant(const Value* v) {
  return v != nullptr && v->is_constant() && v->constant().numel() == 0;
}

// Softmax / LogSoftmax / Hardmax before opset 13 coerce the input to 2-D at `axis` (default 1) and
// normalize each row. Equivalent newest form: Flatten(axis) -> op(axis=-1) -> Reshape(Shape(x)),
// or just op(axis=-1) when `axis` is already the last dimension.
Upgraded upgrade_coercing_softmax(NodeSpec& spec, NodeEmitter& emitter) {
  int64_t axis = int_attr(spec, "axis", 1);
  Value* x = input_or_null(spec, 0);
  if (x == nullptr) return make_error("{}: {} needs an input", emitter.context(spec), spec.onnx_op);
  const TensorType& type = x->type();
  if (type.has_rank()) {
    int rank = type.rank();
    if (axis < -rank || axis >= std::max(rank, 1)) {
      return make_error("{}: axis {} out of range for rank {}", emitter.context(spec), axis, rank);
    }
    if (axis < 0) axis += rank;
    if (axis == rank - 1 || rank == 0) {
      spec.attrs["axis"] = int64_t{-1};
      return kEmitAsIs;
    }
  }
  SEQRUN_ASSIGN(Node * flat, emitter.helper(spec, "Flatten", {x}, 1, {{"axis", axis}}));
  SEQRUN_ASSIGN(Node * norm, emitter.helper(spec, spec.op, {flat->output(0)}, 1, {{"axis", int64_t{-1}}}));
  Value* shape = nullptr;
  if (auto dims = type.static_shape()) {
    shape = emitter.constant(spec.onnx_op + "_shape",
                             Tensor::from_vector<int64_t>({static_cast<int64_t>(dims->size())}, *dims));
  } else {
    SEQRUN_ASSIGN(Node * shape_node, emitter.helper(spec, "Shape", {x}, 1));
    shape = shape_node->output(0);
  }
  NodeSpec reshape = spec;
  reshape.op = "Reshape";
  reshape.inputs = {norm->output(0), shape};
  reshape.attrs.clear();
  SEQRUN_ASSIGN(auto outputs, emitter.emit(reshape));
  return std::optional<std::vector<Value*>>(outputs);
}

// Upsample (opset 7..9) and Resize-10 are the newest Resize with asymmetric coordinates and
// floor rounding for nearest.
Upgraded upgrade_upsample(NodeSpec& spec, NodeEmitter& emitter) {
  if (spec.onnx_op == "Upsample" && spec.opset < 7) {
    return emitter.unsupported_op(spec,
                                  "Upsample before opset 7 (width_scale/height_scale) is not supported");
  }
  Value* scales = input_or_null(spec, 1);
  if (const Attribute* a = find_attr(spec, "scales")) {
    if (a->type() != AttrType::Floats)
      return emitter.unsupported_attribute(spec, "scales", "expected floats");
    std::vector<float> values = a->floats();
    scales = emitter.constant(spec.onnx_op + "_scales",
                              Tensor::from_vector<float>({static_cast<int64_t>(values.size())}, values));
    spec.attrs.erase("scales");
  }
  if (scales == nullptr) return make_error("{}: {} needs scales", emitter.context(spec), spec.onnx_op);
  std::string mode = "nearest";
  if (const Attribute* a = find_attr(spec, "mode"); a != nullptr && a->type() == AttrType::String)
    mode = a->s();
  if (mode == "bilinear") mode = "linear";
  if (mode != "nearest" && mode != "linear") {
    return emitter.unsupported_attribute(spec, "mode", "mode '" + mode + "' is not supported");
  }
  spec.op = "Resize";
  spec.inputs = {input_or_null(spec, 0), nullptr, scales};
  spec.attrs = {{"mode", mode},
                {"coordinate_transformation_mode", std::string("asymmetric")},
                {"nearest_mode", std::string("floor")}};
  return kEmitAsIs;
}

// Scan-8 has a leading batch axis on every state and scan input, and an optional sequence_lens
// input. Without sequence_lens it equals an outer Scan over the batch axis whose body runs the
// newest Scan over one batch entry (its states and scan inputs sliced at that entry).
Upgraded upgrade_scan8(NodeSpec& spec, NodeEmitter& emitter) {
  if (input_or_null(spec, 0) != nullptr) {
    return emitter.unsupported_op(spec, "Scan-8 with sequence_lens is not supported");
  }
  const Attribute* body_attr = find_attr(spec, "body");
  if (body_attr == nullptr || body_attr->type() != AttrType::Graph) {
    return make_error("{}: Scan needs a 'body' graph", emitter.context(spec));
  }
  int64_t num_scan_inputs = int_attr(spec, "num_scan_inputs", -1);
  std::vector<Value*> rest(spec.inputs.begin() + (spec.inputs.empty() ? 0 : 1), spec.inputs.end());
  int64_t num_states = static_cast<int64_t>(rest.size()) - num_scan_inputs;
  if (num_scan_inputs < 0 || num_states < 0) {
    return make_error("{}: num_scan_inputs {} does not fit {} inputs", emitter.context(spec), num_scan_inputs,
                      rest.size());
  }
  for (Value* v : rest) {
    if (v == nullptr) return make_error("{}: Scan inputs must not be empty", emitter.context(spec));
  }
  int num_outputs = static_cast<int>(spec.output_names.size());
  auto outer_body = std::make_shared<Graph>("scan8_batch_entry");
  std::vector<Value*> inner_inputs;
  for (Value* v : rest) {
    const TensorType& t = v->type();
    TensorType sliced = TensorType::unknown_rank(t.dtype());
    if (t.has_rank() && t.rank() >= 1) {
      sliced = TensorType(t.dtype(), std::vector<Dim>(t.dims().begin() + 1, t.dims().end()));
    }
    inner_inputs.push_back(outer_body->add_input(outer_body->unique_name(v->name() + "_entry"), sliced));
  }
  for (Value* c : spec.captures) inner_inputs.push_back(outer_body->add_capture(c->name(), c->type()));
  std::map<std::string, Attribute> inner_attrs = {{"body", *body_attr}, {"num_scan_inputs", num_scan_inputs}};
  if (const Attribute* dirs = find_attr(spec, "directions")) inner_attrs["scan_input_directions"] = *dirs;
  std::vector<std::string> names;
  for (int i = 0; i < num_outputs; ++i)
    names.push_back(outer_body->unique_name("scan8_out_" + std::to_string(i)));
  Node* inner = outer_body->add_node("Scan", inner_inputs, num_outputs, inner_attrs, names);
  inner->set_num_captures(static_cast<int>(spec.captures.size()));
  Status st = infer_node_types(*inner);
  if (!st) return make_error("{}: {}", emitter.context(spec), st.message());
  outer_body->set_outputs(inner->outputs());
  spec.inputs = rest;
  spec.attrs = {{"body", Attribute::GraphPtr(outer_body)},
                {"num_scan_inputs", static_cast<int64_t>(rest.size())}};
  return kEmitAsIs;
}

// GroupNormalization before opset 21 has one scale/bias per group; the newest has one per channel.
Upgraded upgrade_group_norm(NodeSpec& spec, NodeEmitter& emitter) {
  Value* x = input_or_null(spec, 0);
  int64_t groups = int_attr(spec, "num_groups", -1);
  if (x == nullptr || groups <= 0)
    return make_error("{}: GroupNormalization needs x and num_groups", emitter.context(spec));
  const TensorType& t = x->type();
  if (!t.has_rank() || t.rank() < 2 || !t.dim(1).is_static() || t.dim(1).value() % groups != 0) {
    return emitter.unsupported_op(spec, "per-group scale/bias need a static channel count");
  }
  int64_t per_group = t.dim(1).value() / groups;
  for (size_t i = 1; i <= 2; ++i) {
    Value* v = input_or_null(spec, i);
    if (v == nullptr) continue;
    Value* shape_g1 =
        emitter.constant(spec.onnx_op + "_group_shape", Tensor::from_vector<int64_t>({2}, {groups, 1}));
    Value* shape_gc = emitter.constant(spec.onnx_op + "_expand_shape",
                                       Tensor::from_vector<int64_t>({2}, {groups, per_group}));
    Value* shape_c = emitter.constant(spec.onnx_op + "_channel_shape",
                                      Tensor::from_vector<int64_t>({1}, {groups * per_group}));
    SEQRUN_ASSIGN(Node * r1, emitter.helper(spec, "Reshape", {v, shape_g1}, 1));
    SEQRUN_ASSIGN(Node * e, emitter.helper(spec, "Expand", {r1->output(0), shape_gc}, 1));
    SEQRUN_ASSIGN(Node * r2, emitter.helper(spec, "Reshape", {e->output(0), shape_c}, 1));
    set_input(spec, i, r2->output(0));
  }
  return kEmitAsIs;
}

Result<int64_t> onnx_type_from_name(const std::string& name) {
  static const std::map<std::string, int64_t> kByName = {
      {"FLOAT", 1},   {"UINT8", 2},   {"INT8", 3},     {"UINT16", 4},   {"INT16", 5},
      {"INT32", 6},   {"INT64", 7},   {"BOOL", 9},     {"FLOAT16", 10}, {"DOUBLE", 11},
      {"UINT32", 12}, {"UINT64", 13}, {"BFLOAT16", 16}};
  auto it = kByName.find(name);
  if (it == kByName.end()) return make_error("unknown type name '{}'", name);
  return it->second;
}

const std::set<std::string>& legacy_broadcast_ops() {
  static const std::set<std::string> ops = {"Add", "Sub", "Mul",   "Div",     "Pow",  "And",
                                            "Or",  "Xor", "Equal", "Greater", "Less", "PRelu"};
  return ops;
}

const std::set<std::string>& reduce_ops() {
  static const std::set<std::string> ops = {"ReduceMean",      "ReduceMax", "ReduceMin",    "ReduceProd",
                                            "ReduceL1",        "ReduceL2",  "ReduceLogSum", "ReduceLogSumExp",
                                            "ReduceSumSquare", "ReduceSum"};
  return ops;
}

}  // namespace

Upgraded upgrade_legacy_node(NodeSpec& spec, NodeEmitter& emitter) {
  if (spec.onnx_domain != "ai.onnx") return kEmitAsIs;
  const std::string& op = spec.onnx_op;
  const int opset = spec.opset;

  // Attributes of the first opsets that never change the inference result.
  if (opset < 7) {
    spec.attrs.erase("consumed_inputs");
    spec.attrs.erase("is_test");
  }
  if (opset < 7 && (legacy_broadcast_ops().count(op) != 0 || op == "Gemm")) {
    if (find_attr(spec, "axis") != nullptr && op != "Gemm") {
      return emitter.unsupported_attribute(spec, "axis", "legacy broadcasting with an axis is not supported");
    }
    spec.attrs.erase("broadcast");
  }

  // Attributes that name an element type must name one seqrun has (not STRING, COMPLEX64, ...).
  for (const char* key : {"to", "dtype"}) {
    const Attribute* a = find_attr(spec, key);
    if (a == nullptr || a->type() != AttrType::Int) continue;
    if (op != "Cast" && std::string(key) == "to") continue;
    if (!dtype_from_onnx(static_cast<int32_t>(a->i()))) {
      return make_error("{}: unsupported dtype {} (attribute '{}' of {}::{})", emitter.context(spec),
                        onnx_dtype_name(static_cast<int32_t>(a->i())), key, spec.onnx_domain, op);
    }
  }

  if (op == "Softmax" || op == "LogSoftmax" || op == "Hardmax") {
    if (opset < 13) return upgrade_coercing_softmax(spec, emitter);
  } else if (op == "Split") {
    if (opset < 13) SEQRUN_TRY(ints_attr_to_input(spec, emitter, "split", 1));
    if (opset < 18 && input_or_null(spec, 1) == nullptr) {
      spec.attrs["num_outputs"] = static_cast<int64_t>(spec.output_names.size());
    }
  } else if (op == "Squeeze" || op == "Unsqueeze") {
    if (opset < 13) SEQRUN_TRY(ints_attr_to_input(spec, emitter, "axes", 1));
  } else if (reduce_ops().count(op) != 0) {
    if (opset < (op == "ReduceSum" ? 13 : 18)) SEQRUN_TRY(ints_attr_to_input(spec, emitter, "axes", 1));
  } else if (op == "Pad") {
    if (opset < 11) {
      if (find_attr(spec, "paddings") != nullptr) {
        spec.attrs["pads"] = spec.attrs["paddings"];
        spec.attrs.erase("paddings");
      }
      SEQRUN_TRY(ints_attr_to_input(spec, emitter, "pads", 1));
      SEQRUN_TRY(float_attr_to_input(spec, emitter, "value", 2));
    }
  } else if (op == "Slice") {
    if (opset < 10) {
      const Attribute* axes = find_attr(spec, "axes");
      SEQRUN_TRY(ints_attr_to_input(spec, emitter, "starts", 1));
      SEQRUN_TRY(ints_attr_to_input(spec, emitter, "ends", 2));
      if (axes != nullptr) SEQRUN_TRY(ints_attr_to_input(spec, emitter, "axes", 3));
    }
  } else if (op == "Clip") {
    if (opset < 11) {
      SEQRUN_TRY(float_attr_to_input(spec, emitter, "min", 1));
      SEQRUN_TRY(float_attr_to_input(spec, emitter, "max", 2));
    }
  } else if (op == "TopK") {
    if (opset < 10) {
      int64_t k = int_attr(spec, "k", -1);
      if (k < 0) return make_error("{}: TopK needs attribute 'k'", emitter.context(spec));
      set_input(spec, 1, emitter.constant("TopK_k", Tensor::from_vector<int64_t>({1}, {k})));
      spec.attrs.erase("k");
    }
  } else if (op == "DFT") {
    if (opset < 20) {  // opset 17: `axis` attribute (default 1); opset 20 takes it as input 2
      int64_t axis = int_attr(spec, "axis", 1);
      spec.attrs.erase("axis");
      set_input(spec, 2, emitter.constant("DFT_axis", Tensor::scalar<int64_t>(axis)));
    }
  } else if (op == "Dropout") {
    if (opset < 12) {
      const Attribute* ratio = find_attr(spec, "ratio");
      if (ratio != nullptr) {
        float r = ratio->type() == AttrType::Float ? ratio->f() : static_cast<float>(ratio->i());
        set_input(spec, 1, emitter.constant("Dropout_ratio", Tensor::scalar<float>(r)));
        spec.attrs.erase("ratio");
      }
    }
  } else if (op == "BatchNormalization") {
    if (opset < 9) {
      if (int_attr(spec, "spatial", 1) == 0) {
        return emitter.unsupported_attribute(spec, "spatial", "spatial=0 (per-element statistics)");
      }
      spec.attrs.erase("spatial");
    }
    if (opset < 14) {
      for (size_t i = 1; i < spec.output_names.size(); ++i) {
        if (!spec.output_names[i].empty()) {
          return emitter.unsupported_op(spec, "training outputs (mean/var) of old BatchNormalization");
        }
      }
      spec.output_names.resize(std::min<size_t>(spec.output_names.size(), 1));
    }
  } else if (op == "Reshape") {
    if (opset < 5) SEQRUN_TRY(ints_attr_to_input(spec, emitter, "shape", 1));
  } else if (op == "Concat") {
    if (opset < 4 && find_attr(spec, "axis") == nullptr) spec.attrs["axis"] = int64_t{1};
  } else if (op == "Cast") {
    if (const Attribute* to = find_attr(spec, "to"); to != nullptr && to->type() == AttrType::String) {
      auto code = onnx_type_from_name(to->s());
      if (!code) return emitter.unsupported_attribute(spec, "to", code.status().message());
      spec.attrs["to"] = code.value();
    }
  } else if (op == "Tile") {
    if (opset < 6) return emitter.unsupported_op(spec, "Tile before opset 6 (tiles/axis inputs)");
  } else if (op == "Upsample") {
    return upgrade_upsample(spec, emitter);
  } else if (op == "Resize") {
    if (opset < 11) return upgrade_upsample(spec, emitter);
    // Opsets 11/12 required roi and used empty tensors for "absent"; the newest form leaves them out.
    if (is_empty_constant(input_or_null(spec, 1))) spec.inputs[1] = nullptr;
    if (is_empty_constant(input_or_null(spec, 2)) && input_or_null(spec, 3) != nullptr)
      spec.inputs[2] = nullptr;
  } else if (op == "Scatter") {
    spec.op = "ScatterElements";
  } else if (op == "Scan") {
    if (opset < 9) return upgrade_scan8(spec, emitter);
  } else if (op == "GridSample") {
    if (opset < 20) {
      if (const Attribute* mode = find_attr(spec, "mode");
          mode != nullptr && mode->type() == AttrType::String) {
        if (mode->s() == "bilinear") spec.attrs["mode"] = std::string("linear");
        if (mode->s() == "bicubic") spec.attrs["mode"] = std::string("cubic");
      }
    }
  } else if (op == "RoiAlign") {
    // RoiAlign-10 had no coordinate_transformation_mode and behaved like 'output_half_pixel'; the
    // newest default is 'half_pixel'.
    if (opset < 16) spec.attrs["coordinate_transformation_mode"] = std::string("output_half_pixel");
  } else if (op == "GroupNormalization") {
    if (opset < 21) return upgrade_group_norm(spec, emitter);
  } else if (op == "GRU" || op == "LSTM" || op == "RNN") {
    if (opset < 7 && find_attr(spec, "output_sequence") != nullptr) {
      spec.attrs.erase("output_sequence");  // opset 1 only: every output is always produced now
    }
  }
  return kEmitAsIs;
}

}  // namespace seqrun::onnx_import::detail
