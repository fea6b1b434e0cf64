// nn family, normalizations: BatchNormalization (inference), InstanceNormalization,
// LayerNormalization, RMSNormalization, GroupNormalization, LRN and MeanVarianceNormalization.
// Schemas and reference kernels, checked against PyTorch/numpy case files (tests/data/nn) and
// hand-computed values.
#include <catch2/catch.hpp>

#include <cmath>

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

TEST_CASE("norms: PyTorch/numpy case files") {
  const auto files = case_files({"norm_"});
  REQUIRE(files.size() >= 12);
  for (const std::string& f : files) {
    DYNAMIC_SECTION(f) {
      check_case(f);
    }
  }
}

TEST_CASE("BatchNormalization: hand-computed, training mode is an error") {
  // channel 0: (x - 1) / sqrt(4) * 2 + 1; channel 1: (x - 0) / sqrt(1) * 1 - 1 (epsilon 0)
  OneNode n("BatchNormalization",
            {f32({1, 2, 2}, {3, 5, 2, -2}), f32({2}, {2, 1}), f32({2}, {1, -1}), f32({2}, {1, 0}),
             f32({2}, {4, 1})},
            {{"epsilon", Attribute(0.0f)}});
  CHECK(run_ok(n).to_f32_vector() == std::vector<float>{3, 5, 1, -3});

  const std::vector<Tensor> ins = {f32({1, 2, 1}, {1, 2}), f32({2}, {1, 1}), f32({2}, {0, 0}),
                                   f32({2}, {0, 0}), f32({2}, {1, 1})};
  OneNode train("BatchNormalization", ins, {{"training_mode", Attribute(1)}});
  CHECK(mentions(run_error(train), {"BatchNormalization 'n'", "training_mode"}));
  CHECK(mentions(run_error(train, false), {"BatchNormalization 'n'", "training"}));
  OneNode outs("BatchNormalization", ins, {}, 3);
  CHECK(mentions(run_error(outs), {"BatchNormalization 'n'", "one output"}));
  OneNode ch("BatchNormalization", {f32({1, 2, 1}, {1, 2}), f32({3}, {1, 1, 1}), f32({2}, {0, 0}),
                                    f32({2}, {0, 0}), f32({2}, {1, 1})});
  CHECK(mentions(run_error(ch), {"BatchNormalization 'n'", "scale", "[2]"}));
  CHECK(mentions(run_error(ch, false), {"BatchNormalization 'n'", "scale", "[2]"}));
}

TEST_CASE("LayerNormalization: hand-computed row, stats outputs, f16 round trip") {
  // row [1, 3]: mean 2, var 1 -> [-1, 1] / sqrt(1 + 0) ; scale [2, 2], bias [0, 1]
  OneNode n("LayerNormalization", {f32({1, 2}, {1, 3}), f32({2}, {2, 2}), f32({2}, {0, 1})},
            {{"epsilon", Attribute(0.0f)}}, 3);
  auto r = n.run();
  REQUIRE(r.is_ok());
  CHECK((*r)[0].to_f32_vector() == std::vector<float>{-2, 3});
  CHECK((*r)[1].to_f32_vector() == std::vector<float>{2});
  CHECK((*r)[2].to_f32_vector() == std::vector<float>{1});
  CHECK(n.out_type(1).to_string() == "f32[1, 1]");

  OneNode h("LayerNormalization", {f32({1, 2}, {1, 3}).cast(DType::f16), f32({2}, {2, 2}).cast(DType::f16)},
            {{"epsilon", Attribute(0.0f)}}, 2);
  auto rh = h.run();
  REQUIRE(rh.is_ok());
  CHECK((*rh)[0].dtype() == DType::f16);
  CHECK((*rh)[0].to_f32_vector() == std::vector<float>{-2, 2});
  CHECK((*rh)[1].dtype() == DType::f32);  // stash_type = float
  CHECK(h.out_type(1).dtype() == DType::f32);

  OneNode axis("LayerNormalization", {f32({1, 2}, {1, 3}), f32({2}, {1, 1})}, {{"axis", Attribute(2)}});
  CHECK(mentions(run_error(axis), {"LayerNormalization 'n'", "axis 2"}));
  CHECK(mentions(run_error(axis, false), {"LayerNormalization 'n'", "axis 2"}));
  OneNode scale("LayerNormalization", {f32({1, 2}, {1, 3}), f32({3}, {1, 1, 1})});
  CHECK(mentions(run_error(scale, false), {"LayerNormalization 'n'", "scale", "broadcast"}));
}

TEST_CASE("RMSNormalization, GroupNormalization, LRN, MVN: hand-computed values and errors") {
  // rms([3, 4]) = sqrt(12.5)
  OneNode rms("RMSNormalization", {f32({2}, {3, 4}), f32({2}, {1, 2})}, {{"epsilon", Attribute(0.0f)}});
  const Tensor y = run_ok(rms);
  CHECK(y.get_f64(0) == Approx(3 / std::sqrt(12.5)));
  CHECK(y.get_f64(1) == Approx(8 / std::sqrt(12.5)));

  // one group of two channels [1], [3]: mean 2, var 1
  OneNode gn("GroupNormalization", {f32({1, 2, 1}, {1, 3}), f32({2}, {1, 3}), f32({2}, {0, 1})},
             {{"num_groups", Attribute(1)}, {"epsilon", Attribute(0.0f)}});
  CHECK(run_ok(gn).to_f32_vector() == std::vector<float>{-1, 4});
  OneNode groups("GroupNormalization", {f32({1, 3, 1}, {1, 2, 3}), f32({3}, {1, 1, 1}), f32({3}, {0, 0, 0})},
                 {{"num_groups", Attribute(2)}});
  CHECK(mentions(run_error(groups), {"GroupNormalization 'n'", "num_groups 2"}));
  CHECK(mentions(run_error(groups, false), {"GroupNormalization 'n'", "num_groups 2"}));

  // size 1, alpha 1, beta 1, bias 1: y = x / (1 + x^2)
  OneNode lrn("LRN", {f32({1, 1, 2}, {1, 2})},
              {{"size", Attribute(1)}, {"alpha", Attribute(1.0f)}, {"beta", Attribute(1.0f)}});
  CHECK(run_ok(lrn).to_f32_vector() == std::vector<float>{0.5f, 0.4f});
  OneNode lrn0("LRN", {f32({1, 1, 2}, {1, 2})}, {{"size", Attribute(0)}});
  CHECK(mentions(run_error(lrn0), {"LRN 'n'", "size"}));
  CHECK(mentions(run_error(lrn0, false), {"LRN 'n'", "size"}));

  // axes [1] over [1, 4]: mean 2.5, std sqrt(1.25)
  OneNode mvn("MeanVarianceNormalization", {f32({1, 4}, {1, 2, 3, 4})},
              {{"axes", Attribute(std::vector<int64_t>{1})}});
  const Tensor m = run_ok(mvn);
  CHECK(m.get_f64(0) == Approx(-1.5 / std::sqrt(1.25)));
  CHECK(m.get_f64(3) == Approx(1.5 / std::sqrt(1.25)));
  OneNode mvn_axis("MeanVarianceNormalization", {f32({1, 4}, {1, 2, 3, 4})});  // default axes [0, 2, 3]
  CHECK(mentions(run_error(mvn_axis), {"MeanVarianceNormalization 'n'", "axis 2"}));
  CHECK(mentions(run_error(mvn_axis, false), {"MeanVarianceNormalization 'n'", "axis 2"}));

  OneNode inst("InstanceNormalization", {f32({1, 2}, {1, 2}), f32({2}, {1, 1}), f32({2}, {0, 0})});
  CHECK(mentions(run_error(inst), {"InstanceNormalization 'n'", "rank >= 3"}));
  CHECK(mentions(run_error(inst, false), {"InstanceNormalization 'n'", "spatial"}));
  OneNode ints("RMSNormalization", {i64({2}, {1, 2}), i64({2}, {1, 1})});
  CHECK(mentions(run_error(ints), {"RMSNormalization 'n'", "float"}));
  CHECK(mentions(run_error(ints, false), {"RMSNormalization 'n'", "float"}));
}
