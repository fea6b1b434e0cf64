// Recurrent family (RNN, LSTM, GRU): schemas (shape/dtype inference, errors) and reference kernels,
// checked against torch.nn.LSTM/GRU/RNN and a numpy implementation of the ONNX specification
// (tests/data/recurrent, see tests/reference/gen_recurrent_cases.py) and hand-computed values.
#include <catch2/catch.hpp>

#include <dirent.h>

#include "nn_case_file.h"

using namespace seqrun;
using namespace nn_test;

namespace {

std::vector<std::string> recurrent_case_files() {
  const std::string dir = std::string(SEQRUN_TEST_DATA) + "/recurrent";
  std::vector<std::string> files;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name.size() > 4 && name.compare(name.size() - 4, 4, ".txt") == 0) files.push_back(dir + "/" + name);
    }
    closedir(d);
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The case files write the activations list as one comma-separated string.
void split_activations(NnCase& c) {
  auto it = c.attrs.find("activations");
  if (it == c.attrs.end() || it->second.type() != AttrType::String) return;
  std::vector<std::string> names;
  std::stringstream s(it->second.s());
  for (std::string name; std::getline(s, name, ',');) names.push_back(name);
  it->second = Attribute(names);
}

void check_recurrent_case(const std::string& path) {
  NnCase c = load_case(path);
  split_activations(c);
  std::vector<Tensor> inputs;
  for (const CaseInput& in : c.inputs) inputs.push_back(in.value);
  OneNode n(c.op, inputs, c.attrs, static_cast<int>(c.outputs.size()));
  auto result = n.run();
  INFO((result ? std::string("ran") : result.status().message()));
  REQUIRE(result.is_ok());
  for (size_t k = 0; k < c.outputs.size(); ++k) {
    const Tensor& got = (*result)[k];
    const Tensor& want = c.outputs[k];
    INFO("output " << k);
    REQUIRE(got.shape() == want.shape());
    CHECK(n.out_type(static_cast<int>(k)).static_shape() == want.shape());
    double worst = 0.0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      const double w = want.get_f64(i);
      worst = std::max(worst, std::fabs(got.get_f64(i) - w) / (c.atol + c.rtol * std::fabs(w)));
    }
    INFO("worst error / tolerance = " << worst);
    CHECK(worst <= 1.0);
  }
}

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

Tensor filled(Shape shape, float v) {
  return f32(shape, std::vector<float>(num_elements(shape), v));
}

}  // namespace

TEST_CASE("recurrent: torch.nn and numpy-spec case files") {
  const auto files = recurrent_case_files();
  REQUIRE(files.size() >= 16);
  for (const std::string& f : files) {
    DYNAMIC_SECTION(f) {
      check_recurrent_case(f);
    }
  }
}

TEST_CASE("RNN: hand-computed Affine recurrence h_t = x_t + 0.5 h_{t-1}, forward and reverse") {
  // X [seq 3, batch 1, input 1], W = 1, R = 0.5, activation Affine(alpha 1, beta 0).
  const Tensor x = f32({3, 1, 1}, {1, 2, 3});
  std::map<std::string, Attribute> attrs = {{"hidden_size", Attribute(1)},
                                            {"activations", Attribute(std::vector<std::string>{"Affine"})}};
  OneNode fwd("RNN", {x, f32({1, 1, 1}, {1}), f32({1, 1, 1}, {0.5f})}, attrs, 2);
  auto r = fwd.run();
  REQUIRE(r.is_ok());
  CHECK((*r)[0].to_f32_vector() == std::vector<float>{1.0f, 2.5f, 4.25f});
  CHECK((*r)[1].to_f32_vector() == std::vector<float>{4.25f});
  attrs["direction"] = Attribute("reverse");
  OneNode rev("RNN", {x, f32({1, 1, 1}, {1}), f32({1, 1, 1}, {0.5f})}, attrs, 2);
  auto rr = rev.run();
  REQUIRE(rr.is_ok());
  // Reverse: h(t=2) = 3, h(t=1) = 2 + 1.5 = 3.5, h(t=0) = 1 + 1.75 = 2.75; Y_h is the t = 0 state.
  CHECK((*rr)[0].to_f32_vector() == std::vector<float>{2.75f, 3.5f, 3.0f});
  CHECK((*rr)[1].to_f32_vector() == std::vector<float>{2.75f});
}

TEST_CASE("LSTM: a zero sequence length leaves that row's Y, Y_h and Y_c zero") {
  // batch 2: row 0 runs 2 steps, row 1 none (ONNX Runtime's behaviour: zero outputs, not initial_h).
  const Tensor lens = Tensor::from_vector<int32_t>({2}, {2, 0});
  OneNode n("LSTM",
            {filled({2, 2, 1}, 1.0f), filled({1, 4, 1}, 0.5f), filled({1, 4, 1}, 0.5f), Tensor(), lens,
             filled({1, 2, 1}, 0.3f), filled({1, 2, 1}, 0.3f)},
            {{"hidden_size", Attribute(1)}}, 3);
  auto r = n.run();
  REQUIRE(r.is_ok());
  const std::vector<float> y = (*r)[0].to_f32_vector(), yh = (*r)[1].to_f32_vector(),
                           yc = (*r)[2].to_f32_vector();
  // Naive step: i = o = f = sigmoid(0.5 x + 0.5 h), c~ = tanh(0.5 x + 0.5 h), c = f c + i c~, h = o tanh(c).
  auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  double h = 0.3, c = 0.3;
  for (int t = 0; t < 2; ++t) {
    const double pre = 0.5 * 1.0 + 0.5 * h;
    c = sig(pre) * c + sig(pre) * std::tanh(pre);
    h = sig(pre) * std::tanh(c);
    CHECK(y[t * 2 + 0] == Approx(h).epsilon(1e-6));  // Y [seq, dirs, batch, hidden]
    CHECK(y[t * 2 + 1] == 0.0f);
  }
  CHECK(yh[0] == Approx(h).epsilon(1e-6));
  CHECK(yc[0] == Approx(c).epsilon(1e-6));
  CHECK(yh[1] == 0.0f);
  CHECK(yc[1] == 0.0f);
}

TEST_CASE("recurrent: inference of every output shape, symbolic dims, layouts and dtypes") {
  Graph g;
  Value* x = g.add_input("x", TensorType(DType::f16, {Dim::symbol("seq"), Dim::symbol("batch"), Dim(8)}));
  Value* w = g.add_constant("w", Tensor::zeros(DType::f32, {2, 4 * 5, 8}));
  Value* r = g.add_constant("r", Tensor::zeros(DType::f32, {2, 4 * 5, 5}));
  Node* lstm = g.add_node("LSTM", {x, w, r}, 3, {{"direction", Attribute("bidirectional")}});
  REQUIRE(infer_graph_types(g).is_ok());
  CHECK(lstm->output(0)->type().to_string() == "f16[seq, 2, batch, 5]");
  CHECK(lstm->output(1)->type().to_string() == "f16[2, batch, 5]");
  CHECK(lstm->output(2)->type().to_string() == "f16[2, batch, 5]");

  Graph g1;
  Value* xb = g1.add_input("x", TensorType(DType::f32, {Dim::symbol("batch"), Dim::symbol("seq"), Dim(3)}));
  Value* wg = g1.add_input("w", TensorType(DType::f32, {Dim(1), Dim(12), Dim(3)}));
  Value* rg = g1.add_input("r", TensorType(DType::f32, {Dim(1), Dim(12), Dim(4)}));
  Node* gru = g1.add_node("GRU", {xb, wg, rg}, 2, {{"layout", Attribute(1)}, {"hidden_size", Attribute(4)}});
  REQUIRE(infer_graph_types(g1).is_ok());
  CHECK(gru->output(0)->type().to_string() == "f32[batch, seq, 1, 4]");
  CHECK(gru->output(1)->type().to_string() == "f32[batch, 1, 4]");
}

TEST_CASE("recurrent: f16 inputs run in f32 and come back as f16") {
  OneNode n("RNN",
            {f32({2, 1, 1}, {1, 2}).cast(DType::f16), f32({1, 1, 1}, {1}).cast(DType::f16),
             f32({1, 1, 1}, {0.5f}).cast(DType::f16)},
            {{"activations", Attribute(std::vector<std::string>{"affine"})}}, 2);
  Tensor y = run_ok(n);
  CHECK(y.dtype() == DType::f16);
  CHECK(y.get_f64(1) == 2.5);
}

TEST_CASE("recurrent: bad shapes and attributes are errors naming the node") {
  const Tensor x = filled({3, 2, 4}, 0.1f);
  // W has 3 gate blocks: an LSTM needs 4.
  OneNode bad_w("LSTM", {x, filled({1, 9, 4}, 0.1f), filled({1, 12, 3}, 0.1f)},
                {{"hidden_size", Attribute(3)}});
  CHECK(mentions(run_error(bad_w), {"LSTM 'n'", "W must be"}));
  CHECK(mentions(run_error(bad_w, false), {"LSTM 'n'", "W must be"}));

  OneNode bad_dir("GRU", {x, filled({1, 9, 4}, 0.1f), filled({1, 9, 3}, 0.1f)},
                  {{"direction", Attribute("up")}});
  CHECK(mentions(run_error(bad_dir), {"GRU 'n'", "direction 'up'"}));
  CHECK(mentions(run_error(bad_dir, false), {"GRU 'n'", "direction 'up'"}));

  OneNode bad_act("RNN", {x, filled({1, 3, 4}, 0.1f), filled({1, 3, 3}, 0.1f)},
                  {{"activations", Attribute(std::vector<std::string>{"Swish"})}});
  CHECK(mentions(run_error(bad_act), {"RNN 'n'", "unknown activation 'Swish'"}));
  CHECK(mentions(run_error(bad_act, false), {"RNN 'n'", "unknown activation 'Swish'"}));

  OneNode bad_count("GRU", {x, filled({1, 9, 4}, 0.1f), filled({1, 9, 3}, 0.1f)},
                    {{"activations", Attribute(std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"})}});
  CHECK(mentions(run_error(bad_count, false), {"GRU 'n'", "activations lists 3 functions"}));

  OneNode bad_lens("RNN",
                   {x, filled({1, 3, 4}, 0.1f), filled({1, 3, 3}, 0.1f), Tensor(),
                    Tensor::from_vector<int32_t>({2}, {3, 4})},
                   {});
  CHECK(mentions(run_error(bad_lens, false), {"RNN 'n'", "sequence_lens[1] = 4"}));

  OneNode bad_h0(
      "RNN", {x, filled({1, 3, 4}, 0.1f), filled({1, 3, 3}, 0.1f), Tensor(), Tensor(), filled({1, 3, 3}, 0)},
      {});
  CHECK(mentions(run_error(bad_h0), {"RNN 'n'", "initial_h must be"}));
  CHECK(mentions(run_error(bad_h0, false), {"RNN 'n'", "initial_h must be"}));

  OneNode bad_hidden("RNN", {x, filled({1, 3, 4}, 0.1f), filled({1, 3, 3}, 0.1f)},
                     {{"hidden_size", Attribute(2)}});
  CHECK(mentions(run_error(bad_hidden), {"RNN 'n'", "must be"}));
  CHECK(mentions(run_error(bad_hidden, false), {"RNN 'n'", "must be"}));

  OneNode bad_x("LSTM", {filled({3, 4}, 0.1f), filled({1, 12, 4}, 0.1f), filled({1, 12, 3}, 0.1f)}, {});
  CHECK(mentions(run_error(bad_x), {"LSTM 'n'", "X must be 3-D"}));
  CHECK(mentions(run_error(bad_x, false), {"LSTM 'n'", "X must be 3-D"}));
}
