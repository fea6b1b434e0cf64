// Test helpers for the nn-family reference kernels: one-node graphs, and replay of the case files
// tests/reference/gen_nn_cases.py writes to tests/data/nn/ (format described in that script).
//
// Header-only, included by test_ref_nn.cpp, test_ref_conv.cpp, test_ref_norm.cpp and
// test_ref_resize.cpp (each test file is its own executable).
#pragma once

#include <catch2/catch.hpp>

#include <dirent.h>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/infer.h"
#include "runtime/executor.h"

namespace nn_test {

using namespace seqrun;

// A one-node graph. Inputs listed in `constants` become graph constants (so shape inference sees
// them); an undefined Tensor is an absent optional input.
struct OneNode {
  std::unique_ptr<Graph> graph = std::make_unique<Graph>("one_node");
  Node* node = nullptr;
  std::vector<Tensor> feeds;

  OneNode(const std::string& op, const std::vector<Tensor>& inputs,
          std::map<std::string, Attribute> attrs = {}, int num_outputs = 1,
          const std::vector<int>& constants = {}) {
    std::vector<Value*> ins;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Tensor& t = inputs[i];
      const bool is_const =
          std::find(constants.begin(), constants.end(), static_cast<int>(i)) != constants.end();
      if (!t.defined()) {
        ins.push_back(nullptr);
      } else if (is_const) {
        ins.push_back(graph->add_constant("c" + std::to_string(i), t));
      } else {
        ins.push_back(
            graph->add_input("in" + std::to_string(i), TensorType::from_shape(t.dtype(), t.shape())));
        feeds.push_back(t);
      }
    }
    node = graph->add_node(op, ins, num_outputs, std::move(attrs), {}, nullptr);
    node->set_name("n");
    graph->set_outputs(node->outputs());
  }
  Status infer() { return infer_graph_types(*graph); }
  // Runs the kernels without shape inference (so the kernels' own checks are what fails).
  Result<std::vector<Tensor>> run_uninferred() { return runtime::ReferenceExecutor().run(*graph, feeds); }
  Result<std::vector<Tensor>> run() {
    Status st = infer();
    if (!st) return st;
    return runtime::ReferenceExecutor().run(*graph, feeds);
  }
  const TensorType& out_type(int i = 0) const { return node->output(i)->type(); }
};

inline Tensor f32(Shape shape, std::vector<float> values) {
  return Tensor::from_vector<float>(std::move(shape), values);
}
inline Tensor i64(Shape shape, std::vector<int64_t> values) {
  return Tensor::from_vector<int64_t>(std::move(shape), values);
}

// True when `message` contains every one of `parts`.
inline bool mentions(const std::string& message, const std::vector<std::string>& parts) {
  for (const std::string& p : parts) {
    if (message.find(p) == std::string::npos) return false;
  }
  return true;
}

struct CaseInput {
  Tensor value;  // undefined = absent
  bool constant = false;
};

struct NnCase {
  std::string op;
  std::map<std::string, Attribute> attrs;
  std::vector<CaseInput> inputs;
  std::vector<Tensor> outputs;
  double rtol = 1e-4, atol = 1e-5;
};

inline Tensor read_tensor(std::istringstream& header, std::istream& in) {
  std::string dtype_text;
  int rank = 0;
  header >> dtype_text >> rank;
  Shape shape(rank);
  for (int i = 0; i < rank; ++i) header >> shape[i];
  const DType dtype = dtype_from_name(dtype_text).value_or(DType::undefined);
  Tensor t = Tensor::empty(dtype, shape);
  std::string line;
  std::getline(in, line);
  std::istringstream values(line);
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = 0;
    values >> v;
    switch (dtype) {
      case DType::f32:
        t.data<float>()[i] = static_cast<float>(v);
        break;
      case DType::i64:
        t.data<int64_t>()[i] = static_cast<int64_t>(v);
        break;
      case DType::i32:
        t.data<int32_t>()[i] = static_cast<int32_t>(v);
        break;
      case DType::u8:
        t.data<uint8_t>()[i] = static_cast<uint8_t>(v);
        break;
      default:
        break;
    }
  }
  return t;
}

inline NnCase load_case(const std::string& path) {
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
      } else if (type == "fs") {
        std::vector<float> v;
        for (float x; s >> x;) v.push_back(x);
        c.attrs[name] = Attribute(v);
      }
    } else if (kind == "in" || kind == "const") {
      CaseInput ci;
      ci.constant = kind == "const";
      if (line.find("none") == std::string::npos) ci.value = read_tensor(s, in);
      c.inputs.push_back(ci);
    } else if (kind == "out") {
      c.outputs.push_back(read_tensor(s, in));
    } else if (kind == "tol") {
      s >> c.rtol >> c.atol;
    }
  }
  return c;
}

// The case files under tests/data/nn whose names start with one of `prefixes`, sorted.
inline std::vector<std::string> case_files(const std::vector<std::string>& prefixes) {
  const std::string dir = std::string(SEQRUN_TEST_DATA) + "/nn";
  std::vector<std::string> files;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name.size() < 4 || name.compare(name.size() - 4, 4, ".txt") != 0) continue;
      for (const std::string& p : prefixes) {
        if (name.compare(0, p.size(), p) == 0) {
          files.push_back(dir + "/" + name);
          break;
        }
      }
    }
    closedir(d);
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Runs the case and checks every output (values within rtol/atol, integers exactly) and that the
// inferred output types agree with what the kernel produced.
inline void check_case(const std::string& path) {
  INFO("case file " << path);
  NnCase c = load_case(path);
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
  REQUIRE(result->size() == c.outputs.size());
  for (size_t k = 0; k < c.outputs.size(); ++k) {
    const Tensor& got = (*result)[k];
    const Tensor& want = c.outputs[k];
    INFO("output " << k << ": got " << shape_to_string(got.shape()) << " want "
                   << shape_to_string(want.shape()));
    REQUIRE(got.dtype() == want.dtype());
    REQUIRE(got.shape() == want.shape());
    const TensorType& inferred = n.out_type(static_cast<int>(k));
    CHECK(inferred.dtype() == want.dtype());
    if (auto s = inferred.static_shape()) CHECK(*s == want.shape());
    int64_t bad = -1;
    double worst = 0.0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      const double g = got.get_f64(i), w = want.get_f64(i);
      const double err = std::fabs(g - w);
      const bool ok = is_float(want.dtype()) ? err <= c.atol + c.rtol * std::fabs(w) : g == w;
      if (!ok && bad < 0) bad = i;
      worst = std::max(worst, err);
    }
    INFO("first mismatch at flat index " << bad
                                         << (bad >= 0 ? ": got " + std::to_string(got.get_f64(bad)) +
                                                            " want " + std::to_string(want.get_f64(bad))
                                                      : std::string())
                                         << ", max abs error " << worst);
    CHECK(bad < 0);
  }
}

}  // namespace nn_test
