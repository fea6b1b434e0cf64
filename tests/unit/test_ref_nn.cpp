// nn family, matrix products and LinearRecurrence: schemas (shape/dtype inference, errors) and
// reference kernels, checked against hand-computed values and numpy (tests/data/nn, see
// tests/reference/gen_nn_cases.py).
#include <catch2/catch.hpp>

#include "nn_case_file.h"

using namespace seqrun;
using namespace nn_test;

namespace {
Tensor run_ok(OneNode& n, int i = 0) {
  auto r = n.run();
  INFO((r ? std::string() : r.status().message()));
  REQUIRE(r.is_ok());
  return (*r)[i];
}

std::string run_error(OneNode& n, bool infer = true) {
  auto r = infer ? n.run() : n.run_uninferred();
  REQUIRE_FALSE(r.is_ok());
  return r.status().message();
}
}  // namespace

TEST_CASE("nn products: numpy/PyTorch case files") {
  const auto files = case_files({"matmul_", "gemm_", "linear_", "einsum_", "linrec_"});
  REQUIRE(files.size() >= 23);
  for (const std::string& f : files) {
    DYNAMIC_SECTION(f) {
      check_case(f);
    }
  }
}

TEST_CASE("MatMul: hand-computed 2x2 and f16 inputs come back as f16") {
  OneNode n("MatMul", {f32({2, 2}, {1, 2, 3, 4}), f32({2, 2}, {5, 6, 7, 8})});
  Tensor y = run_ok(n);
  CHECK(y.to_f32_vector() == std::vector<float>{19, 22, 43, 50});

  OneNode h("MatMul", {f32({1, 2}, {1.5f, -2}).cast(DType::f16), f32({2, 1}, {2, 0.25f}).cast(DType::f16)});
  Tensor yh = run_ok(h);
  CHECK(yh.dtype() == DType::f16);
  CHECK(yh.shape() == Shape{1, 1});
  CHECK(yh.get_f64(0) == 2.5);
}

TEST_CASE("MatMul: inference keeps symbolic dims and broadcasts batch dims") {
  Graph g;
  Value* a = g.add_input("a", TensorType(DType::f32, {Dim::symbol("batch"), Dim::symbol("seq"), Dim(64)}));
  Value* b = g.add_input("b", TensorType(DType::f32, {Dim(64), Dim(128)}));
  Value* v = g.add_input("v", TensorType(DType::f32, {Dim(64)}));
  Node* mm = g.add_node("MatMul", {a, b}, 1);
  Node* mv = g.add_node("MatMul", {a, v}, 1);
  REQUIRE(infer_graph_types(g).is_ok());
  CHECK(mm->output(0)->type().to_string() == "f32[batch, seq, 128]");
  CHECK(mv->output(0)->type().to_string() == "f32[batch, seq]");
}

TEST_CASE("MatMul: mismatched inner dims are an error naming the node") {
  OneNode n("MatMul", {f32({2, 3}, std::vector<float>(6, 1)), f32({2, 3}, std::vector<float>(6, 1))});
  CHECK(mentions(run_error(n), {"MatMul 'n'", "inner dims"}));
  CHECK(mentions(run_error(n, false), {"MatMul 'n'", "inner dims"}));
  OneNode s("MatMul", {Tensor::scalar<float>(1), f32({1}, {1})});
  CHECK(mentions(run_error(s, false), {"MatMul 'n'", "rank"}));
  OneNode b("MatMul", {f32({2, 1, 2}, std::vector<float>(4, 1)), f32({3, 2, 1}, std::vector<float>(6, 1))});
  CHECK(mentions(run_error(b, false), {"MatMul 'n'", "broadcast"}));
}

TEST_CASE("Gemm: scalar C, transposes, and shape errors") {
  // A = [[1, 2]] (1x2), B^T given as [[3, 4], [5, 6]] (2x2 -> B = [[3, 5], [4, 6]])
  OneNode n("Gemm", {f32({1, 2}, {1, 2}), f32({2, 2}, {3, 4, 5, 6}), Tensor::scalar<float>(10)},
            {{"transB", Attribute(1)}, {"beta", Attribute(0.5f)}});
  Tensor y = run_ok(n);
  CHECK(y.shape() == Shape{1, 2});
  CHECK(y.to_f32_vector() == std::vector<float>{1 * 3 + 2 * 4 + 5.0f, 1 * 5 + 2 * 6 + 5.0f});

  OneNode bad("Gemm", {f32({2, 2, 1}, std::vector<float>(4, 1)), f32({1, 2}, {1, 2})});
  CHECK(mentions(run_error(bad), {"Gemm 'n'", "2-D"}));
  OneNode bad_c("Gemm", {f32({2, 2}, std::vector<float>(4, 1)), f32({2, 3}, std::vector<float>(6, 1)),
                         f32({2, 2}, std::vector<float>(4, 1))});
  CHECK(mentions(run_error(bad_c), {"Gemm 'n'", "C"}));
  CHECK(mentions(run_error(bad_c, false), {"Gemm 'n'", "C"}));
}

TEST_CASE("Linear: hand-computed, inference and errors") {
  // W = [[1, 0], [1, 1], [0, 2]], b = [0, 1, 2]; x = [3, 4] -> [3, 8, 10]
  OneNode n("Linear", {f32({1, 2}, {3, 4}), f32({3, 2}, {1, 0, 1, 1, 0, 2}), f32({3}, {0, 1, 2})});
  Tensor y = run_ok(n);
  CHECK(y.shape() == Shape{1, 3});
  CHECK(y.to_f32_vector() == std::vector<float>{3, 8, 10});

  OneNode bad("Linear", {f32({1, 2}, {3, 4}), f32({2, 3}, std::vector<float>(6, 1))});
  CHECK(mentions(run_error(bad), {"Linear 'n'", "input features"}));
  CHECK(mentions(run_error(bad, false), {"Linear 'n'", "[out, in]"}));
  OneNode bad_b("Linear", {f32({1, 2}, {3, 4}), f32({3, 2}, std::vector<float>(6, 1)), f32({2}, {0, 0})});
  CHECK(mentions(run_error(bad_b), {"Linear 'n'", "bias"}));
}

TEST_CASE("Einsum: hand-computed transpose and dot, inference, errors") {
  OneNode tr("Einsum", {f32({2, 3}, {1, 2, 3, 4, 5, 6})}, {{"equation", Attribute("ij->ji")}});
  Tensor y = run_ok(tr);
  CHECK(y.shape() == Shape{3, 2});
  CHECK(y.to_f32_vector() == std::vector<float>{1, 4, 2, 5, 3, 6});
  CHECK(tr.out_type().to_string() == "f32[3, 2]");

  OneNode dot("Einsum", {f32({3}, {1, 2, 3}), f32({3}, {4, 5, 6})}, {{"equation", Attribute("i, i")}});
  Tensor d = run_ok(dot);
  CHECK(d.shape() == Shape{});
  CHECK(d.get_f64(0) == 32.0);

  OneNode ints("Einsum", {i64({2, 2}, {1, 2, 3, 4}), i64({2}, {10, 100})},
               {{"equation", Attribute("ij,j->i")}});
  Tensor yi = run_ok(ints);
  CHECK(yi.dtype() == DType::i64);
  CHECK(yi.to_i64_vector() == std::vector<int64_t>{210, 430});

  OneNode terms("Einsum", {f32({2}, {1, 2})}, {{"equation", Attribute("i,j->ij")}});
  CHECK(mentions(run_error(terms), {"Einsum 'n'", "2 operand terms", "1 inputs"}));
  OneNode chars("Einsum", {f32({2}, {1, 2})}, {{"equation", Attribute("i1->i")}});
  CHECK(mentions(run_error(chars, false), {"Einsum 'n'", "invalid character"}));
  OneNode out_label("Einsum", {f32({2}, {1, 2})}, {{"equation", Attribute("i->j")}});
  CHECK(mentions(run_error(out_label), {"Einsum 'n'", "'j'"}));
  CHECK(mentions(run_error(out_label, false), {"Einsum 'n'", "'j'"}));
  OneNode sizes("Einsum", {f32({2}, {1, 2}), f32({3}, {1, 2, 3})}, {{"equation", Attribute("i,i->i")}});
  CHECK(mentions(run_error(sizes), {"Einsum 'n'", "label 'i'"}));
  CHECK(mentions(run_error(sizes, false), {"Einsum 'n'", "size"}));
  OneNode rank("Einsum", {f32({2, 2}, {1, 2, 3, 4})}, {{"equation", Attribute("i->i")}});
  CHECK(mentions(run_error(rank, false), {"Einsum 'n'", "rank 2"}));
  OneNode no_ell("Einsum", {f32({2, 2}, {1, 2, 3, 4})}, {{"equation", Attribute("...i->i")}});
  CHECK(mentions(run_error(no_ell, false), {"Einsum 'n'", "'...'"}));
}

TEST_CASE("LinearRecurrence: hand-computed scan, final state, inference, errors") {
  // batch 1, seq 3, state 1: a = 0.5, b = 1, h0 = 0 -> 1, 1.5, 1.75
  OneNode n("LinearRecurrence", {f32({1, 3, 1}, {0.5f, 0.5f, 0.5f}), f32({1, 3, 1}, {1, 1, 1})}, {}, 2);
  auto r = n.run();
  REQUIRE(r.is_ok());
  CHECK((*r)[0].to_f32_vector() == std::vector<float>{1, 1.5f, 1.75f});
  CHECK((*r)[1].shape() == Shape{1, 1});
  CHECK((*r)[1].get_f64(0) == 1.75);
  CHECK(n.out_type(1).to_string() == "f32[1, 1]");

  Graph g;
  Value* a =
      g.add_input("a", TensorType(DType::f16, {Dim::symbol("b"), Dim::symbol("seq"), Dim(8), Dim(16)}));
  Node* node = g.add_node("LinearRecurrence", {a, a}, 2);
  REQUIRE(infer_graph_types(g).is_ok());
  CHECK(node->output(0)->type().to_string() == "f16[b, seq, 8, 16]");
  CHECK(node->output(1)->type().to_string() == "f16[b, 8, 16]");

  OneNode mismatch("LinearRecurrence", {f32({1, 2}, {1, 1}), f32({1, 3}, {1, 1, 1})});
  CHECK(mentions(run_error(mismatch), {"LinearRecurrence 'n'", "same shape"}));
  CHECK(mentions(run_error(mismatch, false), {"LinearRecurrence 'n'", "same shape"}));
  OneNode h0("LinearRecurrence",
             {f32({1, 2, 2}, {1, 1, 1, 1}), f32({1, 2, 2}, {1, 1, 1, 1}), f32({2}, {0, 0})});
  CHECK(mentions(run_error(h0), {"LinearRecurrence 'n'", "h0"}));
  CHECK(mentions(run_error(h0, false), {"LinearRecurrence 'n'", "h0"}));
  OneNode axis("LinearRecurrence", {f32({1, 2}, {1, 1}), f32({1, 2}, {1, 1})}, {{"axis", Attribute(5)}});
  CHECK(mentions(run_error(axis, false), {"LinearRecurrence 'n'", "axis 5"}));
}
