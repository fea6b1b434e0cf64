// Chunk-reshape shape proofs and small integer folding (see chunk_reshape.h).
#include "passes/chunk_reshape.h"

#include <algorithm>
#include <string>

#include "passes/pattern.h"

namespace seqrun::passes {
namespace {

std::optional<IntTensor> fold_ints_at(const Value* v, ShapeReasoner& shapes, int depth) {
  if (v == nullptr || depth > 16) return std::nullopt;
  if (v->is_constant()) {
    const Tensor& t = v->constant();
    if (!is_integer(t.dtype()) || t.numel() > 64) return std::nullopt;
    return IntTensor{t.shape(), t.to_i64_vector()};
  }
  Node* n = producer(v);
  if (n == nullptr) return std::nullopt;
  const std::string& op = n->op();
  if (op == "Identity" || (op == "Cast" && is_integer(v->type().dtype()))) {
    return fold_ints_at(n->input(0), shapes, depth + 1);
  }
  if (op == "Reshape" || op == "Unsqueeze" || op == "Squeeze" || op == "Transpose" || op == "Concat" ||
      op == "Slice") {
    auto in = fold_ints_at(n->input(0), shapes, depth + 1);
    if (!in) return std::nullopt;
    const int rank = static_cast<int>(in->shape.size());
    if (op == "Reshape" || op == "Unsqueeze" || op == "Squeeze") {  // same elements, the type's static shape
      auto out_dims = shapes.dims(v);
      if (!out_dims) return std::nullopt;
      Shape shape;
      for (const SymDim& d : *out_dims) {
        if (!d.is_static()) return std::nullopt;
        shape.push_back(d.value());
      }
      if (num_elements(shape) != static_cast<int64_t>(in->data.size())) return std::nullopt;
      return IntTensor{shape, in->data};
    }
    if (op == "Transpose") {
      std::vector<int64_t> perm = transpose_perm(n);
      if (static_cast<int>(perm.size()) != rank || rank != 2) return std::nullopt;  // matrices suffice
      if (perm[0] == 0) return in;
      IntTensor out{{in->shape[1], in->shape[0]}, {}};
      for (int64_t j = 0; j < in->shape[1]; ++j) {
        for (int64_t i = 0; i < in->shape[0]; ++i) out.data.push_back(in->data[i * in->shape[1] + j]);
      }
      return out;
    }
    if (op == "Concat") {  // 1-D pieces only
      if (rank != 1) return std::nullopt;
      IntTensor out = *in;
      for (int i = 1; i < n->num_explicit_inputs(); ++i) {
        auto piece = fold_ints_at(n->input(i), shapes, depth + 1);
        if (!piece || piece->shape.size() != 1) return std::nullopt;
        out.data.insert(out.data.end(), piece->data.begin(), piece->data.end());
      }
      out.shape = {static_cast<int64_t>(out.data.size())};
      return out;
    }
    // Slice along axis 0 of a matrix or vector, any step (torch reverses the pad pairs with step -1).
    auto starts = constant_ints(n->input(1));
    auto ends = constant_ints(n->input(2));
    if (!starts || !ends || starts->size() != 1 || ends->size() != 1 || rank < 1) return std::nullopt;
    if (n->input(3) != nullptr) {
      auto axes = constant_ints(n->input(3));
      if (!axes || axes->size() != 1 || ((*axes)[0] != 0 && (*axes)[0] != -rank)) return std::nullopt;
    }
    int64_t step = 1;
    if (n->input(4) != nullptr) {
      auto steps = constant_ints(n->input(4));
      if (!steps || steps->size() != 1 || (*steps)[0] == 0) return std::nullopt;
      step = (*steps)[0];
    }
    const int64_t rows = in->shape[0],
                  row_size = rows == 0 ? 0 : static_cast<int64_t>(in->data.size()) / rows;
    int64_t s = (*starts)[0], e = (*ends)[0];
    if (s < 0) s += rows;
    if (e < 0) e += rows;
    IntTensor out{in->shape, {}};
    if (step > 0) {
      s = std::clamp<int64_t>(s, 0, rows);
      e = std::clamp<int64_t>(e, 0, rows);
    } else {
      s = std::clamp<int64_t>(s, -1, rows - 1);
      e = std::clamp<int64_t>(e, -1, rows - 1);
    }
    int64_t count = 0;
    for (int64_t i = s; step > 0 ? i < e : i > e; i += step, ++count) {
      out.data.insert(out.data.end(), in->data.begin() + i * row_size, in->data.begin() + (i + 1) * row_size);
    }
    out.shape[0] = count;
    return out;
  }
  if (op == "ConstantOfShape") {
    auto shape = shapes.elements(n->input(0));
    if (!shape) return std::nullopt;
    IntTensor out;
    for (const SymDim& d : *shape) {
      if (!d.is_static() || d.value() < 0 || d.value() > 64) return std::nullopt;
      out.shape.push_back(d.value());
    }
    int64_t fill = 0;
    if (const Attribute* a = n->attr("value")) {
      if (a->tensor().numel() != 1 || !is_integer(a->tensor().dtype())) return std::nullopt;
      fill = a->tensor().get_i64(0);
    }
    out.data.assign(num_elements(out.shape), fill);
    return out;
  }
  return std::nullopt;
}

// Size `axis` of v, also through a Slice whose starts and ends are computed but provable (torch's
// chunk(2) slices [B, T, 2e] at e computed from Shape), which ShapeReasoner only reads from constants.
SymDim provable_dim_at(Value* v, int axis, ShapeReasoner& shapes, int depth) {
  const SymDim known = shapes.dim(v, axis);
  Node* n = producer(v, "Slice");
  const int rank = ShapeReasoner::rank(v);
  if (known.is_static() || n == nullptr || depth > 8 || rank < 0) return known;
  if (axis < 0) axis += rank;
  auto starts = shapes.elements(n->input(1));
  auto ends = shapes.elements(n->input(2));
  std::optional<std::vector<SymDim>> axes, steps;
  if (n->input(3) != nullptr) axes = shapes.elements(n->input(3));
  if (n->input(4) != nullptr) steps = shapes.elements(n->input(4));
  if (!starts || !ends || ends->size() != starts->size() || (n->input(3) != nullptr && !axes) ||
      (n->input(4) != nullptr && !steps)) {
    return known;
  }
  for (size_t k = 0; k < starts->size(); ++k) {
    SymDim a = axes ? (*axes)[k] : SymDim::of(static_cast<int64_t>(k));
    if (!a.is_static()) return known;
    if ((a.value() < 0 ? a.value() + rank : a.value()) != axis) continue;
    const SymDim whole = provable_dim_at(n->input(0), axis, shapes, depth + 1);
    const SymDim& start = (*starts)[k];
    const SymDim& end = (*ends)[k];
    if (!whole.is_static() || !start.is_static() || !end.is_static() || (steps && !(*steps)[k].is(1)))
      return known;
    auto clamp_index = [&](int64_t x) {
      return std::clamp<int64_t>(x < 0 ? x + whole.value() : x, 0, whole.value());
    };
    const int64_t b = clamp_index(start.value()), e = clamp_index(end.value());
    return SymDim::of(std::max<int64_t>(e - b, 0));
  }
  return provable_dim_at(n->input(0), axis, shapes, depth + 1);
}

}  // namespace

std::optional<IntTensor> fold_ints(const Value* v, ShapeReasoner& shapes) {
  return fold_ints_at(v, shapes, 0);
}

SymDim provable_dim(Value* v, int axis, ShapeReasoner& shapes) {
  return provable_dim_at(v, axis, shapes, 0);
}

// Size `axis` of a Reshape's output. ShapeReasoner gives up on a whole target when one element is unknown
// (torch computes G = T // C, which has no exact symbolic form), so a target built by Concat is also read
// piece by piece: the pieces that hold B, C and d stay provable. 0 copies the input's size (allowzero 0).
SymDim reshape_dim(Node* reshape, int axis, ShapeReasoner& shapes) {
  const SymDim derived = shapes.dim(reshape->output(0), axis);
  if (derived.is_static() || reshape->get_int("allowzero", 0) != 0) return derived;
  Node* concat = producer(reshape->input(1), "Concat");
  if (concat == nullptr) return derived;
  int64_t offset = 0;
  for (Value* piece : concat->inputs()) {
    if (piece == nullptr || !piece->type().has_rank() || piece->type().rank() != 1 ||
        !piece->type().dim(0).is_static()) {
      return derived;
    }
    const int64_t length = piece->type().dim(0).value();
    if (axis < offset + length) {
      auto e = shapes.elements(piece);
      if (!e || static_cast<int64_t>(e->size()) != length) return derived;
      const SymDim& d = (*e)[axis - offset];
      if (d.is(0)) return shapes.dim(reshape->input(0), axis);
      return d.known() && (!d.is_static() || d.value() > 0) ? d : derived;
    }
    offset += length;
  }
  return derived;
}

std::optional<Chunked> chunked(Value* x4, ShapeReasoner& shapes) {
  Node* n = producer(x4, "Reshape");
  if (n == nullptr || ShapeReasoner::rank(x4) != 4 || ShapeReasoner::rank(n->input(0)) != 3)
    return std::nullopt;
  Value* flat = n->input(0);
  const SymDim b = shapes.dim(flat, 0), d = provable_dim(flat, 2, shapes), c = reshape_dim(n, 2, shapes);
  if (!b.known() || !d.known() || !(reshape_dim(n, 0, shapes) == b) || !(reshape_dim(n, 3, shapes) == d)) {
    return std::nullopt;
  }
  if (!c.is_static() || c.value() <= 0) return std::nullopt;
  return Chunked{flat, c.value()};
}

}  // namespace seqrun::passes
