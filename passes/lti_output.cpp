// fuse-lti-scan: where a Loop body's per-step readout goes (lti_output.h): the reshapes between the readout
// and ScatterND's update, the update's shape through torch's shape arithmetic, and the proof that ScatterND's
// indices write exactly slice t of the buffer.
#include "passes/lti_output.h"

#include <algorithm>
#include <string>

namespace seqrun::passes::lti {
namespace {
constexpr int kMaxDepth = 32;
}  // namespace

std::optional<Shape> known_shape(const Value* v, ssm::AffineEvaluator& eval, int depth) {
  if (auto s = v->type().static_shape()) return Shape(s->begin(), s->end());
  const Node* n = v->producer();
  if (n == nullptr || depth > kMaxDepth) return std::nullopt;
  if (n->op() == "Identity") return known_shape(n->input(0), eval, depth + 1);
  if (n->op() == "Expand" || n->op() == "Reshape") {
    auto in = known_shape(n->input(0), eval, depth + 1);
    auto target = eval.eval_constant(n->input(1));
    if (!in || !target) return std::nullopt;
    int64_t count = 1;
    for (int64_t d : *in) count *= d;
    if (n->op() == "Expand") {  // numpy broadcast of the two shapes
      const size_t rank = std::max(in->size(), target->size());
      Shape out(rank, 1);
      for (size_t i = 0; i < rank; ++i) {
        const int64_t a = i + in->size() >= rank ? (*in)[i + in->size() - rank] : 1;
        const int64_t b = i + target->size() >= rank ? (*target)[i + target->size() - rank] : 1;
        if (a != b && a != 1 && b != 1) return std::nullopt;
        out[i] = a == 1 ? b : a;
      }
      return out;
    }
    if (n->get_int("allowzero", 0) != 0) return std::nullopt;
    Shape out;
    int64_t known = 1, infer_at = -1;
    for (size_t i = 0; i < target->size(); ++i) {
      int64_t d = (*target)[i];
      if (d == 0) {
        if (i >= in->size()) return std::nullopt;
        d = (*in)[i];
      }
      if (d == -1) {
        if (infer_at >= 0) return std::nullopt;
        infer_at = static_cast<int64_t>(i);
        d = 1;
      } else if (d < 0) {
        return std::nullopt;
      } else {
        known *= d;
      }
      out.push_back(d);
    }
    if (infer_at >= 0) {
      if (known == 0 || count % known != 0) return std::nullopt;
      out[infer_at] = count / known;
    } else if (known != count) {
      return std::nullopt;
    }
    return out;
  }
  return eval.static_shape(v);
}

Value* through_reshapes(Value* v, ssm::AffineEvaluator& eval) {
  for (int i = 0; i < kMaxDepth; ++i) {
    Node* n = v->producer();
    if (n == nullptr) return v;
    const std::string& op = n->op();
    if (op == "Reshape" || op == "Squeeze" || op == "Unsqueeze" || op == "Identity") {
      v = n->input(0);
    } else if (op == "Expand") {
      // Expand to a shape that broadcasts to the input's own shape copies nothing.
      auto in = eval.static_shape(n->input(0));
      auto target = eval.eval_constant(n->input(1));
      if (!in || !target || target->size() > in->size()) return v;
      for (size_t i = 0; i < target->size(); ++i) {
        const int64_t t = (*target)[i], d = (*in)[in->size() - target->size() + i];
        if (t != 1 && t != d) return v;
      }
      v = n->input(0);
    } else {
      return v;
    }
  }
  return v;
}

std::optional<std::vector<int64_t>> scatter_step_perm(const Node* scatter, ssm::AffineEvaluator& eval,
                                                      int64_t B, int64_t H, int64_t steps) {
  // ScatterND(buffer, indices(t), update): step t must write buffer[b, h, t] (the time axis anywhere) with
  // update element b·H + h (row-major), for every b < B, h < H.
  if (scatter->num_inputs() != 3 || scatter->get_string("reduction", "none") != "none") return std::nullopt;
  auto buffer_dims = scatter->input(0)->type().static_shape();
  if (!buffer_dims || buffer_dims->size() != 3) return std::nullopt;
  const Shape buffer(buffer_dims->begin(), buffer_dims->end());
  auto upd = known_shape(scatter->input(2), eval);
  auto idx = eval.eval(scatter->input(1));
  if (!upd || !idx || idx->shape.empty() || idx->shape.back() != 3) return std::nullopt;
  int64_t positions = 1;
  for (size_t i = 0; i + 1 < idx->shape.size(); ++i) positions *= idx->shape[i];
  Shape expected_upd(idx->shape.begin(), idx->shape.end() - 1);
  if (*upd != expected_upd || positions != B * H) return std::nullopt;
  int time_axis = -1;
  for (int j = 0; j < 3; ++j) {
    bool is_t = true;
    for (int64_t p = 0; p < positions; ++p) is_t = is_t && idx->c0[p * 3 + j] == 0 && idx->c1[p * 3 + j] == 1;
    if (is_t) time_axis = j;
  }
  if (time_axis < 0 || buffer[time_axis] != steps) return std::nullopt;
  int other[2], k = 0;
  for (int j = 0; j < 3; ++j) {
    if (j != time_axis) other[k++] = j;
  }
  if (buffer[other[0]] != B || buffer[other[1]] != H) return std::nullopt;
  for (int64_t p = 0; p < positions; ++p) {
    const int64_t* c0 = idx->c0.data() + p * 3;
    const int64_t* c1 = idx->c1.data() + p * 3;
    if (c1[other[0]] != 0 || c1[other[1]] != 0 || c0[other[0]] != p / H || c0[other[1]] != p % H)
      return std::nullopt;
  }
  // LTIScan's y is [B, H, L]: buffer axis j reads its axis perm[j].
  std::vector<int64_t> perm(3, 0);
  perm[time_axis] = 2;
  perm[other[0]] = 0;
  perm[other[1]] = 1;
  return perm;
}

}  // namespace seqrun::passes::lti
