// Misc family (quantization, GridSample, RoiAlign, MaxUnpool, NonMaxSuppression, Unique, Det, DFT,
// STFT, windows, MelWeightMatrix): schemas (inference, errors) and reference kernels, checked against
// PyTorch / numpy outputs (tests/data/misc, see tests/reference/gen_misc_cases.py) and hand-computed
// values.
#include <catch2/catch.hpp>

#include <dirent.h>

#include "nn_case_file.h"

using namespace seqrun;
using namespace nn_test;

namespace {

// A tensor record of tests/data/misc: "<dtype> <rank> <dims...>" then one line of decimal values.
Tensor read_any_tensor(std::istringstream& header, std::istream& in) {
  std::string dtype_text;
  int rank = 0;
  header >> dtype_text >> rank;
  Shape shape(rank);
  for (int i = 0; i < rank; ++i) header >> shape[i];
  const DType dtype = dtype_from_name(dtype_text).value_or(DType::undefined);
  REQUIRE(dtype != DType::undefined);
  std::string line;
  std::getline(in, line);
  std::istringstream values(line);
  std::vector<double> v(static_cast<size_t>(num_elements(shape)));
  for (double& x : v) values >> x;
  const Tensor t = Tensor::from_vector<double>(shape, v);
  return dtype == DType::f64 ? t : t.cast(dtype);
}

NnCase load_misc_case(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  NnCase c;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream s(line);
    std::string kind;
    s >> kind;
    if (kind == "op") {
      s >> c.op;
    } else if (kind == "attr") {
      std::string name, type;
      s >> name >> type;
      if (type == "i") {
        int64_t v;
        s >> v;
        c.attrs[name] = Attribute(v);
      } else if (type == "f") {
        float v;
        s >> v;
        c.attrs[name] = Attribute(v);
      } else if (type == "s") {
        std::string v;
        s >> v;
        c.attrs[name] = Attribute(v);
      } else if (type == "is") {
        std::vector<int64_t> v;
        for (int64_t x; s >> x;) v.push_back(x);
        c.attrs[name] = Attribute(v);
      }
    } else if (kind == "in" || kind == "const") {
      CaseInput ci;
      ci.constant = kind == "const";
      if (line.find("none") == std::string::npos) ci.value = read_any_tensor(s, in);
      c.inputs.push_back(ci);
    } else if (kind == "out") {
      c.outputs.push_back(read_any_tensor(s, in));
    } else if (kind == "tol") {
      s >> c.rtol >> c.atol;
    }
  }
  return c;
}

std::vector<std::string> misc_case_files(const std::string& prefix) {
  const std::string dir = std::string(SEQRUN_TEST_DATA) + "/misc";
  std::vector<std::string> files;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name.size() > 4 && name.compare(name.size() - 4, 4, ".txt") == 0 &&
          name.compare(0, prefix.size(), prefix) == 0)
        files.push_back(dir + "/" + name);
    }
    closedir(d);
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Runs a case: every output's dtype, shape and values (floats within rtol/atol, integers exactly),
// and the inferred types where inference knows them.
void check_misc_case(const std::string& path) {
  INFO("case file " << path);
  NnCase c = load_misc_case(path);
  std::vector<Tensor> inputs;
  std::vector<int> constants;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    inputs.push_back(c.inputs[i].value);
    if (c.inputs[i].constant) constants.push_back(static_cast<int>(i));
  }
  OneNode n(c.op, inputs, c.attrs, static_cast<int>(c.outputs.size()), constants);
  auto result = n.run();
  INFO((result ? std::string("ran") : result.status().message()));
  REQUIRE(result.is_ok());
  for (size_t k = 0; k < c.outputs.size(); ++k) {
    const Tensor& got = (*result)[k];
    const Tensor& want = c.outputs[k];
    INFO("output " << k << ": got " << dtype_name(got.dtype()) << shape_to_string(got.shape()) << " want "
                   << dtype_name(want.dtype()) << shape_to_string(want.shape()));
    REQUIRE(got.dtype() == want.dtype());
    REQUIRE(got.shape() == want.shape());
    const TensorType& inferred = n.out_type(static_cast<int>(k));
    CHECK(inferred.dtype() == want.dtype());
    if (auto s = inferred.static_shape()) CHECK(*s == want.shape());
    int64_t bad = -1;
    for (int64_t i = 0; i < want.numel() && bad < 0; ++i) {
      const double g = got.get_f64(i), w = want.get_f64(i);
      const bool ok = is_float(want.dtype()) ? std::fabs(g - w) <= c.atol + c.rtol * std::fabs(w) : g == w;
      if (!ok) bad = i;
    }
    INFO("first mismatch at " << bad
                              << (bad >= 0 ? ": got " + std::to_string(got.get_f64(bad)) + " want " +
                                                 std::to_string(want.get_f64(bad))
                                           : std::string()));
    CHECK(bad < 0);
  }
}

void check_all(const std::string& prefix, size_t at_least) {
  const auto files = misc_case_files(prefix);
  REQUIRE(files.size() >= at_least);
  for (const std::string& f : files) {
    DYNAMIC_SECTION(f) {
      check_misc_case(f);
    }
  }
}

Result<std::vector<Tensor>> run(OneNode& n) {
  return n.run();
}

std::string run_error(OneNode& n, bool infer = true) {
  auto r = infer ? n.run() : n.run_uninferred();
  REQUIRE_FALSE(r.is_ok());
  return r.status().message();
}

Tensor u8(Shape shape, std::vector<uint8_t> v) {
  return Tensor::from_vector<uint8_t>(std::move(shape), v);
}

}  // namespace

TEST_CASE("quantization ops: numpy / PyTorch case files") {
  check_all("quantize_", 4);
  check_all("dequantize_", 3);
  check_all("matmulinteger_", 2);
  check_all("qlinearmatmul_", 1);
  check_all("convinteger_", 1);
  check_all("qlinearconv_", 1);
}
TEST_CASE("GridSample: torch grid_sample case files (2-D and 3-D, every mode and padding)") {
  check_all("gridsample_", 25);
}
TEST_CASE("RoiAlign, MaxUnpool, Unique, Det: case files") {
  check_all("roialign_", 8);
  check_all("maxunpool_", 3);
  check_all("unique_", 3);
  check_all("det_", 2);
}
TEST_CASE("DFT, STFT, windows, MelWeightMatrix: numpy / torch case files") {
  check_all("dft_", 5);
  check_all("stft_", 2);
  check_all("window_", 21);
  check_all("melweightmatrix_", 2);
}

TEST_CASE("QuantizeLinear: f16 input, hand-computed rounding; DequantizeLinear: f16 scale gives f16") {
  OneNode q("QuantizeLinear", {f32({4}, {1.0f, 1.5f, 2.5f, -600.0f}).cast(DType::f16),
                               Tensor::scalar<float>(1.0f), u8({}, {10})});
  auto r = run(q);
  REQUIRE(r.is_ok());
  CHECK((*r)[0].dtype() == DType::u8);
  CHECK((*r)[0].to_i64_vector() == std::vector<int64_t>{11, 12, 12, 0});  // 1.5 -> 2, 2.5 -> 2 (ties to even)

  OneNode d("DequantizeLinear",
            {u8({2}, {10, 20}), Tensor::scalar<float>(0.5f).cast(DType::f16), u8({}, {12})});
  auto rd = run(d);
  REQUIRE(rd.is_ok());
  CHECK((*rd)[0].dtype() == DType::f16);
  CHECK(d.out_type().dtype() == DType::f16);
  CHECK((*rd)[0].to_f32_vector() == std::vector<float>{-1.0f, 4.0f});
}

TEST_CASE("QLinearMatMul: hand-computed, y_zero_point absent means u8 zero") {
  // (2 - 1) * 0.5 * (7 - 3) * 0.25 + (4 - 1) * 0.5 * (5 - 3) * 0.25 = 0.5 + 0.75 = 1.25; / y_scale 0.5 = 2.5
  // -> 2.
  OneNode n("QLinearMatMul",
            {u8({1, 2}, {2, 4}), Tensor::scalar<float>(0.5f), u8({}, {1}), u8({2, 1}, {7, 5}),
             Tensor::scalar<float>(0.25f), u8({}, {3}), Tensor::scalar<float>(0.5f)});
  auto r = run(n);
  REQUIRE(r.is_ok());
  CHECK((*r)[0].dtype() == DType::u8);
  CHECK(n.out_type().to_string() == "u8[1, 1]");
  CHECK((*r)[0].to_i64_vector() == std::vector<int64_t>{2});
}

TEST_CASE("DynamicQuantizeLinear: hand-computed scale and zero point, all-zero input") {
  // x in [-1, 3]: scale = 4 / 255, zero point = round(1 / scale) = round(63.75) = 64.
  OneNode n("DynamicQuantizeLinear", {f32({3}, {-1.0f, 0.0f, 3.0f})}, {}, 3);
  auto r = run(n);
  REQUIRE(r.is_ok());
  CHECK((*r)[1].get_f64(0) == Approx(4.0 / 255.0));
  CHECK((*r)[2].get_i64(0) == 64);
  CHECK((*r)[0].to_i64_vector() == std::vector<int64_t>{0, 64, 255});
  CHECK(n.out_type(0).to_string() == "u8[3]");
  CHECK(n.out_type(1).to_string() == "f32[]");
  OneNode z("DynamicQuantizeLinear", {f32({2}, {0.0f, 0.0f})}, {}, 3);
  auto rz = run(z);
  REQUIRE(rz.is_ok());
  CHECK((*rz)[0].to_i64_vector() == std::vector<int64_t>{0, 0});
  CHECK((*rz)[2].get_i64(0) == 0);
}

TEST_CASE("NonMaxSuppression: hand-built boxes, thresholds, corner and centre formats") {
  // Boxes (y1, x1, y2, x2): 0 and 1 overlap with IoU 0.81, 2 is apart; box 3 has the lowest score.
  const Tensor boxes = f32({1, 4, 4}, {0, 0, 1, 1, 0, 0.1f, 1, 1.1f, 0, 5, 1, 6, 0, 0, 1, 0.95f});
  const Tensor scores = f32({1, 2, 4}, {0.9f, 0.95f, 0.5f, 0.1f, 0.2f, 0.3f, 0.4f, 0.05f});
  OneNode n("NonMaxSuppression",
            {boxes, scores, Tensor::from_vector<int64_t>({1}, {3}), f32({1}, {0.5f}), f32({1}, {0.15f})});
  auto r = run(n);
  REQUIRE(r.is_ok());
  // Class 0: 1 (0.95) keeps, 0 suppressed, 2 keeps, 3 below threshold. Class 1: 2, 1, then 0 suppressed.
  CHECK((*r)[0].shape() == Shape{4, 3});
  CHECK((*r)[0].to_i64_vector() == std::vector<int64_t>{0, 0, 1, 0, 0, 2, 0, 1, 2, 0, 1, 1});
  CHECK(n.out_type().to_string() == "i64[?, 3]");

  // Centre format [xc, yc, w, h]; no max_output_boxes_per_class input selects nothing.
  const Tensor centre = f32({1, 2, 4}, {0.5f, 0.5f, 1, 1, 0.55f, 0.5f, 1, 1});
  OneNode c("NonMaxSuppression",
            {centre, f32({1, 1, 2}, {0.3f, 0.6f}), Tensor::from_vector<int64_t>({}, {5}),
             Tensor::scalar<float>(0.5f)},
            {{"center_point_box", Attribute(1)}});
  auto rc = run(c);
  REQUIRE(rc.is_ok());
  CHECK((*rc)[0].to_i64_vector() == std::vector<int64_t>{0, 0, 1});
  OneNode none("NonMaxSuppression", {boxes, scores});
  auto rn = run(none);
  REQUIRE(rn.is_ok());
  CHECK((*rn)[0].shape() == Shape{0, 3});
}

TEST_CASE("Unique: bool and f16 inputs keep their dtype") {
  OneNode b("Unique", {Tensor::from_vector<bool>({4}, {true, false, true, true})}, {}, 4);
  auto rb = run(b);
  REQUIRE(rb.is_ok());
  CHECK((*rb)[0].dtype() == DType::boolean);
  CHECK((*rb)[0].to_i64_vector() == std::vector<int64_t>{0, 1});
  CHECK((*rb)[3].to_i64_vector() == std::vector<int64_t>{1, 3});
  OneNode h("Unique", {f32({3}, {2.5f, -1.0f, 2.5f}).cast(DType::f16)});
  auto rh = run(h);
  REQUIRE(rh.is_ok());
  CHECK((*rh)[0].dtype() == DType::f16);
  CHECK((*rh)[0].to_f32_vector() == std::vector<float>{-1.0f, 2.5f});
}

TEST_CASE("misc: inference of shapes and dtypes") {
  Graph g;
  Value* x = g.add_input("x", TensorType(DType::f32, {Dim::symbol("n"), Dim(3), Dim(8), Dim(8)}));
  Value* grid = g.add_input("grid", TensorType(DType::f32, {Dim::symbol("n"), Dim(4), Dim(5), Dim(2)}));
  Node* gs = g.add_node("GridSample", {x, grid}, 1);
  Value* w = g.add_input("w", TensorType(DType::i8, {Dim(6), Dim(3), Dim(3), Dim(3)}));
  Value* xq = g.add_input("xq", TensorType(DType::u8, {Dim(1), Dim(3), Dim(8), Dim(8)}));
  Node* conv = g.add_node("ConvInteger", {xq, w}, 1, {{"strides", Attribute(std::vector<int64_t>{2, 2})}});
  Value* sig = g.add_input("sig", TensorType(DType::f32, {Dim(2), Dim(100), Dim(1)}));
  Value* step = g.add_constant("step", Tensor::scalar<int64_t>(10));
  Value* len = g.add_constant("len", Tensor::scalar<int64_t>(16));
  Node* stft = g.add_node("STFT", {sig, step, nullptr, len}, 1);
  Node* dft = g.add_node("DFT", {sig, len}, 1, {{"onesided", Attribute(1)}});
  Value* size = g.add_constant("size", Tensor::scalar<int32_t>(12));
  Node* win = g.add_node("HannWindow", {size}, 1, {{"output_datatype", Attribute(10)}});
  Value* m = g.add_input("m", TensorType(DType::f32, {Dim::symbol("b"), Dim(4), Dim(4)}));
  Node* det = g.add_node("Det", {m}, 1);
  Value* u = g.add_input("u", TensorType(DType::i64, {Dim(2), Dim(7), Dim(3)}));
  Node* uniq = g.add_node("Unique", {u}, 4, {{"axis", Attribute(1)}});
  REQUIRE(infer_graph_types(g).is_ok());
  CHECK(gs->output(0)->type().to_string() == "f32[n, 3, 4, 5]");
  CHECK(conv->output(0)->type().to_string() == "i32[1, 6, 3, 3]");
  CHECK(stft->output(0)->type().to_string() == "f32[2, 9, 9, 2]");
  CHECK(dft->output(0)->type().to_string() == "f32[2, 9, 2]");
  CHECK(win->output(0)->type().to_string() == "f16[12]");
  CHECK(det->output(0)->type().to_string() == "f32[b]");
  CHECK(uniq->output(0)->type().to_string() == "i64[2, ?, 3]");
  CHECK(uniq->output(2)->type().to_string() == "i64[7]");
}

TEST_CASE("misc: bad inputs are errors naming the node") {
  // QuantizeLinear: per-axis scale of the wrong length.
  OneNode q("QuantizeLinear", {f32({2, 3}, std::vector<float>(6, 1)), f32({2}, {1, 1}), u8({2}, {0, 0})});
  CHECK(mentions(run_error(q, false), {"QuantizeLinear 'n'", "y_scale [2] must be a scalar or [3]"}));
  // MatMulInteger: mixed zero-point dtype.
  OneNode mm("MatMulInteger",
             {u8({2, 2}, {1, 2, 3, 4}), u8({2, 2}, {1, 2, 3, 4}), Tensor::from_vector<int8_t>({}, {1})});
  CHECK(mentions(run_error(mm, false), {"MatMulInteger 'n'", "a_zero_point"}));
  // GridSample: grid's last dim must be the number of spatial dims.
  OneNode gs("GridSample", {f32({1, 1, 2, 2}, {1, 2, 3, 4}), f32({1, 1, 1, 3}, {0, 0, 0})});
  CHECK(mentions(run_error(gs), {"GridSample 'n'", "grid"}));
  CHECK(mentions(run_error(gs, false), {"GridSample 'n'", "grid"}));
  OneNode gm("GridSample", {f32({1, 1, 2, 2}, {1, 2, 3, 4}), f32({1, 1, 1, 2}, {0, 0})},
             {{"mode", Attribute("area")}});
  CHECK(mentions(run_error(gm), {"GridSample 'n'", "mode 'area'"}));
  // RoiAlign: batch index out of range.
  OneNode ra("RoiAlign", {f32({1, 1, 2, 2}, {1, 2, 3, 4}), f32({1, 4}, {0, 0, 1, 1}),
                          Tensor::from_vector<int64_t>({1}, {3})});
  CHECK(mentions(run_error(ra), {"RoiAlign 'n'", "batch_indices[0] = 3"}));
  // MaxUnpool: an index past the output.
  OneNode mu("MaxUnpool", {f32({1, 1, 1, 1}, {5}), Tensor::from_vector<int64_t>({1, 1, 1, 1}, {4})},
             {{"kernel_shape", Attribute(std::vector<int64_t>{2, 2})}});
  CHECK(mentions(run_error(mu), {"MaxUnpool 'n'", "I[0] = 4"}));
  // NonMaxSuppression: scores that do not match the boxes.
  OneNode nms("NonMaxSuppression", {f32({1, 2, 4}, std::vector<float>(8, 0)), f32({1, 1, 3}, {1, 2, 3})});
  CHECK(mentions(run_error(nms), {"NonMaxSuppression 'n'", "scores"}));
  // Unique: axis out of range.
  OneNode un("Unique", {f32({2}, {1, 2})}, {{"axis", Attribute(1)}});
  CHECK(mentions(run_error(un), {"Unique 'n'", "axis 1"}));
  CHECK(mentions(run_error(un, false), {"Unique 'n'", "axis 1"}));
  // Det: not square.
  OneNode dt("Det", {f32({2, 3}, std::vector<float>(6, 1))});
  CHECK(mentions(run_error(dt), {"Det 'n'", "[..., M, M]"}));
  CHECK(mentions(run_error(dt, false), {"Det 'n'", "[..., M, M]"}));
  // DFT: axis on the complex dim.
  OneNode df("DFT", {f32({1, 4, 1}, {1, 2, 3, 4}), Tensor(), Tensor::scalar<int64_t>(-1)}, {}, 1, {2});
  CHECK(mentions(run_error(df), {"DFT 'n'", "axis -1"}));
  CHECK(mentions(run_error(df, false), {"DFT 'n'", "axis -1"}));
  // STFT: frame longer than the signal.
  OneNode st("STFT", {f32({1, 4, 1}, {1, 2, 3, 4}), Tensor::scalar<int64_t>(1), Tensor(),
                      Tensor::scalar<int64_t>(8)});
  CHECK(mentions(run_error(st, false), {"STFT 'n'", "frame_length 8"}));
  // Windows: negative size.
  OneNode hw("HannWindow", {Tensor::scalar<int32_t>(-3)});
  CHECK(mentions(run_error(hw, false), {"HannWindow 'n'", "size -3"}));
  // ConvInteger: channels that do not fit the group.
  OneNode ci("ConvInteger", {u8({1, 3, 2, 2}, std::vector<uint8_t>(12, 1)), u8({2, 2, 1, 1}, {1, 1, 1, 1})});
  CHECK(mentions(run_error(ci, false), {"ConvInteger 'n'", "group"}));
}
