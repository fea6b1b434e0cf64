// The op-test table's data model: a Case is one node to build (op, attributes, inputs and how to fill
// them), the error its outputs may have against the reference kernel, and its cost for --perf.
//
// A Case holds concrete shapes only: the runner builds a one-node graph from it, infers the output
// types, computes the expected outputs with the reference kernels on the host, and runs the same node
// on each selected backend through Backend::kernels().create(...). Inputs marked `constant` become graph
// constants (weights, shape tensors, axes): kernels see their bytes at prepare time, and shape inference
// can use their values. The table itself lives in cases_*.cpp, one file per op family.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "ir/attribute.h"
#include "ir/tensor.h"

namespace seqrun::optest {

using Rng = std::mt19937_64;

// How to fill one input tensor with valid data.
struct Fill {
  enum class Kind { Uniform, Ints, Bools, Values, Custom };
  Kind kind = Kind::Uniform;
  double lo = -1.0, hi = 1.0;  // Uniform: [lo, hi); Ints: [lo, hi] inclusive
  double p_true = 0.5;         // Bools
  std::vector<double> values;  // Values: the exact contents (shape tensors, axes, indices...)
  std::function<void(Tensor&, Rng&)> custom;
};
Fill uniform(double lo, double hi);
Fill ints(int64_t lo, int64_t hi);
Fill bools(double p_true = 0.5);
Fill values(std::vector<double> v);
Fill custom(std::function<void(Tensor&, Rng&)> fn);

// One node input. dtype undefined = an absent optional input.
struct InputSpec {
  DType dtype = DType::undefined;
  Shape shape;
  Fill fill;
  bool constant = false;
};

// Work one run of a case does, from its concrete argument types: FLOPs (compute-bound ops) or
// bytes moved (everything else); perf mode prints GFLOP/s or GB/s from it.
using CostFn = std::function<double(const std::vector<backends::TensorArg>& in,
                                    const std::vector<backends::TensorArg>& out)>;

struct Case {
  std::string op;
  std::map<std::string, Attribute> attrs;
  std::vector<InputSpec> inputs;  // explicit inputs, then `num_captures` captured values
  int num_captures = 0;
  int num_outputs = 1;
  // Largest normalized mean squared error sum((a-b)^2)/sum(b^2) per output; 0 = bit for bit; negative
  // = by output dtype (f32/f64 1e-7, f16 1e-4, bf16 1e-3). Integer and bool outputs are always exact.
  double max_nmse = -1.0;
  CostFn flops;            // null: memory-bound, perf prints GB/s over the input + output bytes
  bool perf_only = false;  // large shapes: timed by --perf, skipped by the correctness run
  std::string note;        // shown after the shapes ("causal", "depthwise", ...)

  Case& attr(const std::string& key, Attribute value) {
    attrs[key] = std::move(value);
    return *this;
  }
  Case& outputs(int n) {
    num_outputs = n;
    return *this;
  }
  Case& captures(int n) {
    num_captures = n;
    return *this;
  }
  Case& bound(double nmse) {
    max_nmse = nmse;
    return *this;
  }
  Case& exact() { return bound(0.0); }
  Case& cost_flops(CostFn fn) {
    flops = std::move(fn);
    return *this;
  }
  Case& perf() {
    perf_only = true;
    return *this;
  }
  Case& with_note(std::string n) {
    note = std::move(n);
    return *this;
  }
};

// ---- builders the table files use -------------------------------------------------------------------
// A graph input of `dtype` filled by `fill` (uniform [-1, 1) by default).
InputSpec in(DType dtype, Shape shape, Fill fill = uniform(-1.0, 1.0));
InputSpec f32(Shape shape, Fill fill = uniform(-1.0, 1.0));
// A constant (weight) input.
InputSpec weight(DType dtype, Shape shape, Fill fill = uniform(-1.0, 1.0));
// A constant i64 tensor with the given contents: 1-D, or a scalar when `scalar` is set.
InputSpec const_i64(std::vector<int64_t> v, bool scalar = false);
// A constant f32 tensor with the given contents and shape.
InputSpec const_f32(Shape shape, std::vector<double> v);
InputSpec absent();
Case& add_case(std::vector<Case>& cases, std::string op, std::vector<InputSpec> inputs);

// Uniform integer in [lo, hi]: the table draws its random shapes with it.
int64_t pick(Rng& rng, int64_t lo, int64_t hi);

// FLOPs of the matrix product parts, from argument shapes.
double matmul_flops(const std::vector<backends::TensorArg>& in, const std::vector<backends::TensorArg>& out);

// ---- the table ----------------------------------------------------------------------------------------
// Every case, in a fixed order; `rng` (seeded by --seed) draws the random shapes.
std::vector<Case> build_cases(Rng& rng);
void add_elementwise_cases(std::vector<Case>& cases, Rng& rng);
void add_linear_algebra_cases(std::vector<Case>& cases, Rng& rng);  // MatMul, Gemm, Linear, Einsum
void add_conv_pool_cases(std::vector<Case>& cases, Rng& rng);
void add_norm_resize_cases(std::vector<Case>& cases, Rng& rng);
void add_reduce_cases(std::vector<Case>& cases, Rng& rng);
void add_shape_cases(std::vector<Case>& cases, Rng& rng);
void add_sequence_cases(std::vector<Case>& cases, Rng& rng);  // attention, scans, control flow
void add_misc_cases(std::vector<Case>& cases, Rng& rng);      // RNNs, quantization, sampling, signal
void add_lti_cases(std::vector<Case>& cases, Rng& rng);       // LTIScan (cases_lti.cpp)

// "f32[2, 3] #f32[3, 4] _": '#' marks a constant input, '_' an absent one; then the note in braces.
std::string describe_inputs(const Case& c);

}  // namespace seqrun::optest
