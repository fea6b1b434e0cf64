// fuse-lti-scan's matcher (internal to passes/): reads an ONNX Loop as a linear time-invariant diagonal
// state-space scan and says what it computes in terms of LTIScan's inputs (see fuse_lti_scan.h for the
// forms).
//
// The proof works on the Loop body as linear algebra over three variables: the previous states (two carried
// slots, read as the real and imaginary parts of one complex state, or one slot for a real state) and the
// input step u_t = u[..., t, ...] (a Gather of a loop-invariant tensor at the iteration number). Each new
// state must be a sum of ± products in which exactly one factor is a variable and every other factor is
// loop-invariant (a capture, a body constant, or computed from those alone). The complex product
// re' = a·re - b·im + c·u, im' = b·re + a·im + d·u is recognized by comparing the factors: the same a in
// both, b with opposite signs. Loop invariance of every coefficient is what "time-invariant" means here; a
// decay that reads t, u_t or the state anywhere is not invariant and the Loop is left alone.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "ir/graph.h"

namespace seqrun::passes::lti {

// ± a product of loop-invariant body values (absent when `factors` is empty).
struct Coefficient {
  std::vector<Value*> factors;  // values of the Loop body: captures, constants, or computed from them only
  bool negative = false;
  bool present() const { return !factors.empty(); }
};

// What one Loop computes, as LTIScan's inputs, and the Loop outputs it replaces.
struct LtiMatch {
  Node* loop = nullptr;
  Value* u = nullptr;   // the top-graph sequence the loop steps through
  int u_time_axis = 2;  // u's step axis; its other two axes are batch and channel, in that order
  Coefficient dA_re, dA_im, dB_re, dB_im, C_re, C_im;  // the imaginary parts absent for a real state
  double readout_scale = 1.0;  // a scalar factor on the readout (S4D's 2·Re(...)), folded into C
  Value* h0_re = nullptr;      // top-graph initial states [B, H, N]; null when zero
  Value* h0_im = nullptr;
  Value* y = nullptr;           // the Loop output that holds every step's readout
  std::vector<int64_t> y_perm;  // y = Transpose(LTIScan's y [B, H, L], y_perm)
  Value* h_re = nullptr;        // Loop outputs of the final states that are used (else null)
  Value* h_im = nullptr;
  int64_t batch = 0, channels = 0, steps = 0, modes = 0;
};

// The LTI scan that `loop` (an ONNX Loop node of the top graph) computes, or nullopt.
std::optional<LtiMatch> match_lti_loop(Node* loop);

}  // namespace seqrun::passes::lti
