// Property test of the execution plan: on random DAGs (elementwise unary/binary with broadcasting, MatMul,
// Reshape, Transpose, Concat, Softmax, ReduceSum, Split; random static shapes behind symbolic inputs), no two
// arena buffers that are live at the same step share a byte — checked here from the plan's step list, not
// from the planner's own lifetimes — and the outputs equal the reference executor's bit for bit.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "ir/infer.h"
#include "ir/text.h"
#include "runtime/executor.h"
#include "runtime/plan.h"
#include "runtime/specialize.h"

using namespace seqrun;
using backends::Backend;
using backends::Kernel;
using backends::KernelInfo;
using backends::TensorArg;

namespace {

// The reference kernels, but every output may overwrite any input of its size. That is true of the
// reference fallback: it computes all outputs into fresh tensors before copying them into place.
class InplaceKernel : public Kernel {
 public:
  explicit InplaceKernel(std::unique_ptr<Kernel> inner) : inner_(std::move(inner)) {}
  bool can_run_in_place(int, int) const override { return true; }
  Status run(const std::vector<TensorArg>& in, const std::vector<TensorArg>& out, void* ws) override {
    return inner_->run(in, out, ws);
  }
  std::string label() const override { return "reference+inplace"; }

 private:
  std::unique_ptr<Kernel> inner_;
};

class InplaceReferenceBackend : public Backend {
 public:
  InplaceReferenceBackend() {
    Backend& ref = backends::cpu_reference_backend();
    for (const std::string& op : ref.kernels().op_names()) {
      kernels_.add(op, [&ref](const KernelInfo& info) -> std::unique_ptr<Kernel> {
        std::unique_ptr<Kernel> k = ref.kernels().create(info);
        return k ? std::make_unique<InplaceKernel>(std::move(k)) : nullptr;
      });
    }
  }
  std::string name() const override { return "cpu-reference-inplace"; }
  backends::DeviceKind device() const override { return backends::DeviceKind::CPU; }
  Result<void*> allocate(size_t bytes) override { return backends::cpu_reference_backend().allocate(bytes); }
  void deallocate(void* p) override { backends::cpu_reference_backend().deallocate(p); }
  Status copy_to_device(void* dst, const void* src, size_t bytes) override {
    std::memcpy(dst, src, bytes);
    return Status::ok();
  }
  Status copy_to_host(void* dst, const void* src, size_t bytes) override {
    std::memcpy(dst, src, bytes);
    return Status::ok();
  }
};

// ---- random graphs ---------------------------------------------------------------------------------------

struct Item {
  Value* value;
  Shape shape;
};

class GraphGenerator {
 public:
  explicit GraphGenerator(uint32_t seed) : rng_(seed) {}

  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool coin() { return uniform(0, 1) == 1; }

  Shape random_shape(int min_rank = 1) {
    Shape s;
    const int rank = uniform(min_rank, 4);
    for (int i = 0; i < rank; ++i) s.push_back(uniform(1, 5));
    return s;
  }

  Tensor random_tensor(const Shape& shape) {
    std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
    std::vector<float> v(static_cast<size_t>(num_elements(shape)));
    for (float& x : v) x = dist(rng_);
    return Tensor::from_vector<float>(shape, v);
  }

  Value* i64_const(const std::vector<int64_t>& values) {
    return g_->add_constant("k" + std::to_string(counter_++),
                            Tensor::from_vector<int64_t>({static_cast<int64_t>(values.size())}, values));
  }

  // A graph with 1..3 inputs (some dims symbolic) and 4..24 random ops; fills the concrete input tensors.
  std::unique_ptr<Graph> generate(std::vector<Tensor>& inputs) {
    g_ = std::make_unique<Graph>("random");
    pool_.clear();
    const int num_inputs = uniform(1, 3);
    for (int i = 0; i < num_inputs; ++i) {
      Shape shape = random_shape();
      std::vector<Dim> dims;
      for (size_t d = 0; d < shape.size(); ++d) {
        if (coin()) {
          dims.push_back(Dim::symbol("s" + std::to_string(i) + "_" + std::to_string(d)));
        } else {
          dims.push_back(Dim(shape[d]));
        }
      }
      Value* v = g_->add_input("in" + std::to_string(i), TensorType(DType::f32, dims));
      pool_.push_back({v, shape});
      inputs.push_back(random_tensor(shape));
    }
    const int num_ops = uniform(4, 24);
    for (int k = 0; k < num_ops; ++k) add_random_op();
    // Outputs: every value nobody reads, plus a random other one now and then (maybe an input or a constant).
    std::vector<Value*> outs;
    for (const Item& it : pool_) {
      if (it.value->uses().empty() && it.value->producer() != nullptr) outs.push_back(it.value);
    }
    if (coin() || outs.empty()) outs.push_back(pick().value);
    g_->set_outputs(outs);
    return std::move(g_);
  }

 private:
  // A random value of rank >= 1 (scalars are outputs only); the inputs guarantee there is one.
  const Item& pick() {
    for (;;) {
      const Item& it = pool_[uniform(0, static_cast<int>(pool_.size()) - 1)];
      if (!it.shape.empty()) return it;
    }
  }

  Node* node(const std::string& op, const std::vector<Value*>& ins, int outs,
             std::map<std::string, Attribute> attrs = {}) {
    return g_->add_node(op, ins, outs, std::move(attrs), {}, nullptr);
  }

  void add_random_op() {
    const Item a = pick();
    const int rank = static_cast<int>(a.shape.size());
    switch (uniform(0, 9)) {
      case 0: {  // unary
        static const char* ops[] = {"Neg", "Relu", "Tanh", "Sigmoid", "Abs", "Exp"};
        pool_.push_back({node(ops[uniform(0, 5)], {a.value}, 1)->output(0), a.shape});
        break;
      }
      case 1:
      case 2: {  // binary with broadcasting: the other operand has some dims 1 or fewer leading dims
        static const char* ops[] = {"Add", "Sub", "Mul", "Max"};
        Shape bs = a.shape;
        for (int64_t& d : bs) {
          if (uniform(0, 3) == 0) d = 1;
        }
        if (!bs.empty() && coin())
          bs.erase(bs.begin(), bs.begin() + uniform(0, static_cast<int>(bs.size()) - 1));
        Value* b = nullptr;
        for (const Item& it : pool_) {
          if (it.shape == bs && it.value != a.value && coin()) b = it.value;
        }
        if (b == nullptr) b = g_->add_constant("c" + std::to_string(counter_++), random_tensor(bs));
        std::vector<Value*> ins = coin() ? std::vector<Value*>{a.value, b} : std::vector<Value*>{b, a.value};
        pool_.push_back({node(ops[uniform(0, 3)], ins, 1)->output(0), a.shape});
        break;
      }
      case 3: {  // MatMul by a constant [k, n] (or a vector: [k] drops the last dim)
        const int64_t k = a.shape.back();
        Shape out = a.shape;
        if (rank >= 2 && coin()) {
          const int64_t n = uniform(1, 6);
          Value* w = g_->add_constant("w" + std::to_string(counter_++), random_tensor({k, n}));
          out.back() = n;
          pool_.push_back({node("MatMul", {a.value, w}, 1)->output(0), out});
        } else {
          Value* w = g_->add_constant("w" + std::to_string(counter_++), random_tensor({k}));
          out.pop_back();
          pool_.push_back({node("MatMul", {a.value, w}, 1)->output(0), out});
        }
        break;
      }
      case 4: {  // Reshape: merge two neighbouring dims, split one, or flatten, sometimes with -1
        Shape out = a.shape;
        const int choice = uniform(0, 2);
        if (choice == 0 && rank >= 2) {
          const int d = uniform(0, rank - 2);
          out[d] *= out[d + 1];
          out.erase(out.begin() + d + 1);
        } else if (choice == 1 && rank < 4) {
          out.insert(out.begin() + uniform(0, rank), 1);
        } else {
          out = {num_elements(a.shape)};
        }
        std::vector<int64_t> spec(out.begin(), out.end());
        if (coin()) spec[uniform(0, static_cast<int>(spec.size()) - 1)] = -1;
        pool_.push_back({node("Reshape", {a.value, i64_const(spec)}, 1)->output(0), out});
        break;
      }
      case 5: {  // Transpose by a random permutation
        std::vector<int64_t> perm(rank);
        for (int i = 0; i < rank; ++i) perm[i] = i;
        std::shuffle(perm.begin(), perm.end(), rng_);
        Shape out;
        for (int64_t p : perm) out.push_back(a.shape[p]);
        pool_.push_back({node("Transpose", {a.value}, 1, {{"perm", perm}})->output(0), out});
        break;
      }
      case 6: {  // Concat with a value of matching shape, or with a unary of itself
        const int axis = uniform(0, rank - 1);
        Value* b = nullptr;
        Shape bs;
        for (const Item& it : pool_) {
          if (static_cast<int>(it.shape.size()) != rank || !coin()) continue;
          bool ok = true;
          for (int d = 0; d < rank; ++d) ok = ok && (d == axis || it.shape[d] == a.shape[d]);
          if (ok) {
            b = it.value;
            bs = it.shape;
          }
        }
        if (b == nullptr) {
          b = node("Neg", {a.value}, 1)->output(0);
          bs = a.shape;
        }
        Shape out = a.shape;
        out[axis] += bs[axis];
        const int64_t attr_axis = coin() ? axis : axis - rank;
        pool_.push_back({node("Concat", {a.value, b}, 1, {{"axis", attr_axis}})->output(0), out});
        break;
      }
      case 7: {  // Softmax along a random axis
        const int64_t axis = uniform(-rank, rank - 1);
        pool_.push_back({node("Softmax", {a.value}, 1, {{"axis", axis}})->output(0), a.shape});
        break;
      }
      case 8: {  // ReduceSum over one or two axes, keepdims either way
        std::vector<int64_t> axes = {uniform(0, rank - 1)};
        if (rank >= 2 && coin()) {
          int64_t other = uniform(0, rank - 1);
          if (other != axes[0]) axes.push_back(other);
        }
        const bool keep = coin();
        Shape out;
        for (int d = 0; d < rank; ++d) {
          const bool reduced = std::find(axes.begin(), axes.end(), d) != axes.end();
          if (!reduced) {
            out.push_back(a.shape[d]);
          } else if (keep) {
            out.push_back(1);
          }
        }
        Node* n = node("ReduceSum", {a.value, i64_const(axes)}, 1, {{"keepdims", int64_t{keep ? 1 : 0}}});
        pool_.push_back({n->output(0), out});
        break;
      }
      case 9: {  // Split into two along an axis of size >= 2
        std::vector<int> axes;
        for (int d = 0; d < rank; ++d) {
          if (a.shape[d] >= 2) axes.push_back(d);
        }
        if (axes.empty()) {
          pool_.push_back({node("Relu", {a.value}, 1)->output(0), a.shape});
          break;
        }
        const int axis = axes[uniform(0, static_cast<int>(axes.size()) - 1)];
        const int64_t first = uniform(1, static_cast<int>(a.shape[axis]) - 1);
        Node* n =
            node("Split", {a.value, i64_const({first, a.shape[axis] - first})}, 2, {{"axis", int64_t{axis}}});
        Shape s0 = a.shape, s1 = a.shape;
        s0[axis] = first;
        s1[axis] = a.shape[axis] - first;
        pool_.push_back({n->output(0), s0});
        pool_.push_back({n->output(1), s1});
        break;
      }
    }
  }

  std::mt19937 rng_;
  std::unique_ptr<Graph> g_;
  std::vector<Item> pool_;
  int counter_ = 0;
};

// ---- the independent overlap check -----------------------------------------------------------------------

// Recomputes every arena buffer's live interval from the steps (first write .. last read), checks the plan's
// lifetimes cover it, and that no two buffers live at one step share bytes, except an in-place pair at the
// one step where the writer overwrites the reader.
void check_no_overlap(const runtime::ExecutionPlan& plan) {
  const auto& buffers = plan.buffers();
  const auto& steps = plan.steps();
  const int n = static_cast<int>(buffers.size());
  std::vector<int> first(n, -1), last(n, -1);
  for (int t = 0; t < static_cast<int>(steps.size()); ++t) {
    for (int b : steps[t].writes) {
      if (b < 0) continue;
      CHECK(first[b] == -1);  // every buffer has exactly one writer
      first[b] = t;
      last[b] = std::max(last[b], t);
    }
    for (int b : steps[t].reads) {
      if (b < 0) continue;
      INFO("buffer " << buffers[b].value << " read at step " << t);
      CHECK(first[b] >= 0);  // written before it is read
      CHECK(first[b] < t);
      last[b] = std::max(last[b], t);
    }
  }
  for (int b = 0; b < n; ++b) {
    INFO("buffer " << buffers[b].value);
    REQUIRE(first[b] >= 0);
    CHECK(buffers[b].first_step <= first[b]);
    CHECK(buffers[b].last_step >= last[b]);
    CHECK(buffers[b].offset % 64 == 0);
    if (buffers[b].device == 0)
      CHECK(buffers[b].offset + buffers[b].size_bytes <= plan.memory_report().arena_bytes);
  }
  for (int a = 0; a < n; ++a) {
    for (int b = a + 1; b < n; ++b) {
      const runtime::PlannedBuffer& x = buffers[a];
      const runtime::PlannedBuffer& y = buffers[b];
      if (x.device != y.device || x.size_bytes == 0 || y.size_bytes == 0) continue;
      const bool live_together = first[a] <= last[b] && first[b] <= last[a];
      const bool bytes_shared = x.offset < y.offset + y.size_bytes && y.offset < x.offset + x.size_bytes;
      if (!live_together || !bytes_shared) continue;
      const bool inplace_pair = (y.inplace_of == a && x.offset == y.offset && last[a] == first[b]) ||
                                (x.inplace_of == b && x.offset == y.offset && last[b] == first[a]);
      INFO("buffers " << x.value << " [" << first[a] << ", " << last[a] << "] @" << x.offset << "+"
                      << x.size_bytes << " and " << y.value << " [" << first[b] << ", " << last[b] << "] @"
                      << y.offset << "+" << y.size_bytes);
      CHECK(inplace_pair);
    }
  }
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

}  // namespace

TEST_CASE("plan property: random graphs never overlap live buffers and match the reference bit for bit") {
  InplaceReferenceBackend inplace_backend;
  int graphs = 0, inplace_total = 0, alias_total = 0, reuse_wins = 0;
  for (uint32_t seed = 1; seed <= 220; ++seed) {
    GraphGenerator gen(seed);
    std::vector<Tensor> inputs;
    std::unique_ptr<Graph> g = gen.generate(inputs);
    INFO("seed " << seed);
    Status inferred = infer_graph_types(*g);
    INFO(inferred.message());
    REQUIRE(inferred.is_ok());
    INFO(print_graph(*g));
    auto want = runtime::ReferenceExecutor().run(*g, inputs);
    INFO(want.status().message());
    REQUIRE(want.is_ok());

    for (int config = 0; config < 2; ++config) {
      INFO((config == 0 ? "cpu-reference" : "cpu-reference with in-place"));
      auto specialized = runtime::specialize_graph(*g, runtime::input_specs_of(inputs));
      INFO(specialized.status().message());
      REQUIRE(specialized.is_ok());
      runtime::PlanOptions options;
      options.backends = {config == 0 ? &backends::cpu_reference_backend() : &inplace_backend};
      auto plan = runtime::ExecutionPlan::build(std::move(specialized).value(), options);
      INFO(plan.status().message());
      REQUIRE(plan.is_ok());
      REQUIRE_FALSE((*plan)->uses_reference_executor());
      check_no_overlap(**plan);
      const runtime::MemoryReport& m = (*plan)->memory_report();
      CHECK(m.arena_bytes >= m.lower_bound_bytes);
      inplace_total += m.inplace_steps;
      alias_total += m.alias_values;
      if (m.arena_bytes < m.no_reuse_bytes) ++reuse_wins;

      // Poison the arena's previous contents with a first run on other data, then run on the real inputs.
      std::vector<Tensor> noise;
      for (const Tensor& t : inputs) noise.push_back(gen.random_tensor(t.shape()));
      std::vector<Tensor> got;
      REQUIRE((*plan)->run(noise, got).is_ok());
      Status st = (*plan)->run(inputs, got);
      INFO(st.message());
      REQUIRE(st.is_ok());
      REQUIRE(got.size() == want->size());
      for (size_t i = 0; i < got.size(); ++i) {
        INFO("output " << i << " (" << g->outputs()[i]->name() << ")");
        CHECK(same_bits(got[i], (*want)[i]));
      }
    }
    ++graphs;
  }
  CHECK(graphs >= 200);
  // The generator must actually exercise the interesting cases.
  CHECK(inplace_total > 100);
  CHECK(alias_total > 100);
  CHECK(reuse_wins > 100);
}
