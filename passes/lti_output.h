// fuse-lti-scan (internal to passes/): where a Loop body's per-step readout y_t [B, H] goes when
// torch.jit.script wrote `y[:, :, t] = ...`: ScatterND(buffer, indices(t), update) with the update a reshape
// of y_t and the indices built from t by Shape/Expand/Concat arithmetic. ssm::AffineEvaluator evaluates that
// arithmetic as c0 + c1·t per element, which proves for every t at once which buffer elements step t writes.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "ir/graph.h"
#include "passes/ssm_index_eval.h"

namespace seqrun::passes::lti {

// The static shape of v even where its type lacks it: Reshape / Expand / Identity of a value of known shape
// with their shape inputs evaluated, else the evaluator's.
std::optional<Shape> known_shape(const Value* v, ssm::AffineEvaluator& eval, int depth = 0);

// The value v is a copy of through ops that keep the row-major element order: Reshape, Squeeze, Unsqueeze,
// Identity, and an Expand that copies nothing.
Value* through_reshapes(Value* v, ssm::AffineEvaluator& eval);

// When step t of the loop writes exactly buffer[b, h, t] (the time axis anywhere in the [.., .., ..] buffer)
// with update element b·H + h (row-major) for every b < B, h < H and the buffer's time axis is `steps` long:
// the buffer's layout as a permutation of LTIScan's y [B, H, L] (buffer axis j is y's axis perm[j]).
std::optional<std::vector<int64_t>> scatter_step_perm(const Node* scatter, ssm::AffineEvaluator& eval,
                                                      int64_t B, int64_t H, int64_t steps);

}  // namespace seqrun::passes::lti
