// Op schemas of the recurrent family: ONNX RNN, LSTM and GRU (opset 22 semantics, layouts 0 and 1).
//
// All three share one signature: X, W, R, B?, sequence_lens?, initial_h? (+ initial_c?, P? for LSTM)
// and outputs Y?, Y_h? (+ Y_c? for LSTM). Inference checks the weight shapes against the number of
// gates (RNN 1, GRU 3, LSTM 4), the direction and hidden_size, and computes every output shape:
//   layout 0: Y [seq, dirs, batch, hidden], Y_h / Y_c [dirs, batch, hidden]
//   layout 1: Y [batch, seq, dirs, hidden], Y_h / Y_c [batch, dirs, hidden]
// The reference kernels (backends/reference/recurrent.cpp) re-check everything at run time.
#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "ir/infer.h"
#include "ir/op_schema.h"
#include "ir/ops/ops.h"

namespace seqrun::ops {
namespace {

using Dims = std::vector<Dim>;

struct RecurrentKind {
  int gates;                // rows of W per direction = gates * hidden_size
  int activations_per_dir;  // f (RNN); f, g (GRU); f, g, h (LSTM)
};

RecurrentKind kind_of(const std::string& op) {
  if (op == "LSTM") return {4, 3};
  if (op == "GRU") return {3, 2};
  return {1, 1};
}

bool static_ne(const Dim& a, const Dim& b) {
  return a.is_static() && b.is_static() && a.value() != b.value();
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool known_activation(const std::string& name) {
  static const char* kNames[] = {
      "relu",       "tanh",        "sigmoid", "affine",   "leakyrelu", "thresholdedrelu",
      "scaledtanh", "hardsigmoid", "elu",     "softsign", "softplus"};
  const std::string l = lower(name);
  return std::any_of(std::begin(kNames), std::end(kNames), [&](const char* k) { return l == k; });
}

// Checks that `t` is rank `rank` with the given expected dims (unknown dims match anything).
Status check_dims(const TensorType& t, const char* what, const Dims& expected) {
  if (!t.has_rank()) return Status::ok();
  bool ok = t.rank() == static_cast<int>(expected.size());
  for (int i = 0; ok && i < t.rank(); ++i) ok = !static_ne(t.dim(i), expected[i]);
  if (!ok) {
    std::string want = "[";
    for (size_t i = 0; i < expected.size(); ++i) want += (i ? ", " : "") + expected[i].to_string();
    return make_error("{} must be {}, got {}", what, want + "]", t.to_string());
  }
  return Status::ok();
}

Status infer_recurrent(InferContext& ctx) {
  const Node& node = ctx.node();
  const RecurrentKind kind = kind_of(node.op());
  const std::string direction = node.get_string("direction", "forward");
  if (direction != "forward" && direction != "reverse" && direction != "bidirectional") {
    return make_error("direction '{}' is not forward, reverse or bidirectional", direction);
  }
  const int64_t dirs = direction == "bidirectional" ? 2 : 1;
  const int64_t layout = node.get_int("layout", 0);
  if (layout != 0 && layout != 1) return make_error("layout must be 0 or 1, got {}", layout);
  if (const Attribute* acts = node.attr("activations");
      acts != nullptr && acts->type() == AttrType::Strings) {
    const size_t n = acts->strings().size();
    const size_t per_dir = static_cast<size_t>(kind.activations_per_dir);
    if (n != per_dir * static_cast<size_t>(dirs) && n != per_dir) {
      return make_error("activations lists {} functions, expected {} ({} per direction)", n, per_dir * dirs,
                        per_dir);
    }
    for (const std::string& a : acts->strings()) {
      if (!known_activation(a)) return make_error("unknown activation '{}'", a);
    }
  }
  if (node.has_attr("clip") && !(node.get_float("clip") > 0.0f)) {
    return make_error("clip must be positive, got {}", node.get_float("clip"));
  }

  const TensorType& x = ctx.input_type(0);
  const TensorType& w = ctx.input_type(1);
  const TensorType& r = ctx.input_type(2);
  const DType dt = x.dtype() != DType::undefined ? x.dtype() : w.dtype();
  if (dt != DType::undefined && !is_float(dt))
    return make_error("X must be a float tensor, got {}", dtype_name(dt));
  if (x.has_rank() && x.rank() != 3) return make_error("X must be 3-D, got {}", x.to_string());

  // Hidden size: the attribute, else R's last dim, else W's rows / gates.
  Dim hidden;
  if (node.has_attr("hidden_size")) {
    const int64_t h = node.get_int("hidden_size");
    if (h <= 0) return make_error("hidden_size must be positive, got {}", h);
    hidden = Dim(h);
  } else if (r.has_rank() && r.rank() == 3) {
    hidden = r.dim(2);
  } else if (w.has_rank() && w.rank() == 3 && w.dim(1).is_static()) {
    hidden = Dim(w.dim(1).value() / kind.gates);
  }
  const Dim rows = hidden.is_static() ? Dim(hidden.value() * kind.gates) : Dim();
  Dim seq, batch, input;
  if (x.has_rank()) {
    seq = x.dim(layout == 0 ? 0 : 1);
    batch = x.dim(layout == 0 ? 1 : 0);
    input = x.dim(2);
  }
  SEQRUN_TRY(check_dims(w, "W", {Dim(dirs), rows, input}));
  SEQRUN_TRY(check_dims(r, "R", {Dim(dirs), rows, hidden}));
  if (ctx.has_input(3)) {
    SEQRUN_TRY(check_dims(ctx.input_type(3), "B",
                          {Dim(dirs), hidden.is_static() ? Dim(2 * hidden.value() * kind.gates) : Dim()}));
  }
  if (ctx.has_input(4)) {
    const DType lens = ctx.input_dtype(4);
    if (lens != DType::undefined && lens != DType::i32 && lens != DType::i64) {
      return make_error("sequence_lens must be int32, got {}", dtype_name(lens));
    }
    SEQRUN_TRY(check_dims(ctx.input_type(4), "sequence_lens", {batch}));
  }
  const Dims state = layout == 0 ? Dims{Dim(dirs), batch, hidden} : Dims{batch, Dim(dirs), hidden};
  if (ctx.has_input(5)) SEQRUN_TRY(check_dims(ctx.input_type(5), "initial_h", state));
  if (node.op() == "LSTM") {
    if (ctx.has_input(6)) SEQRUN_TRY(check_dims(ctx.input_type(6), "initial_c", state));
    if (ctx.has_input(7)) {
      SEQRUN_TRY(check_dims(ctx.input_type(7), "P",
                            {Dim(dirs), hidden.is_static() ? Dim(3 * hidden.value()) : Dim()}));
    }
  }

  const Dims y = layout == 0 ? Dims{seq, Dim(dirs), batch, hidden} : Dims{batch, seq, Dim(dirs), hidden};
  for (int i = 0; i < ctx.num_outputs(); ++i) ctx.outputs[i] = TensorType(dt, i == 0 ? y : state);
  return Status::ok();
}

// Attributes every recurrent op has.
OpDef recurrent_def(const char* name) {
  OpDef d(name);
  d.attr("activation_alpha", AttrType::Floats)
      .attr("activation_beta", AttrType::Floats)
      .attr("activations", AttrType::Strings)
      .attr("clip", AttrType::Float)
      .attr("direction", AttrType::String, Attribute("forward"))
      .attr("hidden_size", AttrType::Int)
      .attr("layout", AttrType::Int, Attribute(0))
      .infer(infer_recurrent);
  return d;
}

}  // namespace

void register_recurrent_ops(OpRegistry& r) {
  r.add(recurrent_def("RNN")
            .inputs(3, 6)
            .outputs(1, 2)
            .doc("Elman RNN: H_t = f(X_t W^T + H_{t-1} R^T + Wb + Rb); inputs X, W, R, B?, sequence_lens?, "
                 "initial_h?; outputs Y?, Y_h?")
            .build());
  r.add(recurrent_def("GRU")
            .inputs(3, 6)
            .outputs(1, 2)
            .doc("GRU (gates z, r, h; linear_before_reset): inputs X, W, R, B?, sequence_lens?, initial_h?; "
                 "outputs Y?, Y_h?")
            .attr("linear_before_reset", AttrType::Int, Attribute(0))
            .build());
  r.add(recurrent_def("LSTM")
            .inputs(3, 8)
            .outputs(1, 3)
            .doc("LSTM (gates i, o, f, c; peepholes P, input_forget): inputs X, W, R, B?, sequence_lens?, "
                 "initial_h?, initial_c?, P?; outputs Y?, Y_h?, Y_c?")
            .attr("input_forget", AttrType::Int, Attribute(0))
            .build());
}

}  // namespace seqrun::ops
