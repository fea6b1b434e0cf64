// ONNX conformance runner (see conformance.h): finds test folders, imports, optimizes, runs every
// data set through a Session and compares outputs with the expected tensors.
#include "tools/export/conformance.h"

#include <fnmatch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "runtime/session.h"
#include "tools/export/onnx_import.h"

namespace seqrun::conformance {

namespace fs = std::filesystem;

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::Pass:
      return "PASS";
    case Outcome::Fail:
      return "FAIL";
    case Outcome::Error:
      return "ERROR";
    case Outcome::Skip:
      return "SKIP";
  }
  return "?";
}

Result<std::map<std::string, std::string>> read_exclude_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error("{}: cannot open exclude file", path);
  std::map<std::string, std::string> excluded;
  std::string line;
  auto trim = [](std::string s) {
    size_t b = s.find_first_not_of(" \t\r");
    size_t e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  };
  while (std::getline(in, line)) {
    std::string text = trim(line);
    if (text.empty() || text[0] == '#') continue;
    size_t hash = text.find('#');
    std::string name = trim(text.substr(0, hash));
    std::string reason = hash == std::string::npos ? "excluded" : trim(text.substr(hash + 1));
    if (name.find_first_of(" \t") != std::string::npos) {
      return make_error("{}: line '{}': expected '<test-name>  # reason'", path, text);
    }
    excluded[name] = reason.empty() ? "excluded" : reason;
  }
  return excluded;
}

Result<std::vector<std::string>> find_test_dirs(const std::vector<std::string>& dirs) {
  std::vector<std::string> tests;
  for (const std::string& dir : dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return make_error("{}: not a directory", dir);
    if (fs::exists(fs::path(dir) / "model.onnx", ec)) {
      tests.push_back(dir);
      continue;
    }
    std::vector<std::string> found;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.is_directory(ec) && fs::exists(entry.path() / "model.onnx", ec))
        found.push_back(entry.path().string());
    }
    if (ec) return make_error("{}: {}", dir, ec.message());
    if (found.empty()) return make_error("{}: no test folders (folders with a model.onnx) found", dir);
    std::sort(found.begin(), found.end());
    tests.insert(tests.end(), found.begin(), found.end());
  }
  return tests;
}

Tolerance tolerance_for(DType expected) {
  if (expected == DType::f16 || expected == DType::bf16) return {1e-2, 1e-3};
  return {1e-3, 1e-5};
}

std::string compare_tensors(const Tensor& actual, const Tensor& expected) {
  if (actual.dtype() != expected.dtype()) {
    return fmt::format("dtype {}, expected {}", dtype_name(actual.dtype()), dtype_name(expected.dtype()));
  }
  if (actual.shape() != expected.shape()) {
    return fmt::format("shape {}, expected {}", shape_to_string(actual.shape()),
                       shape_to_string(expected.shape()));
  }
  const int64_t n = expected.numel();
  if (!is_float(expected.dtype())) {
    const size_t elem = dtype_size(expected.dtype());
    const auto* a = static_cast<const uint8_t*>(actual.raw());
    const auto* b = static_cast<const uint8_t*>(expected.raw());
    int64_t bad = 0;
    int64_t first = -1;
    for (int64_t i = 0; i < n; ++i) {
      bool differs = expected.dtype() == DType::boolean ? ((a[i] != 0) != (b[i] != 0))
                                                        : std::memcmp(a + i * elem, b + i * elem, elem) != 0;
      if (differs) {
        if (first < 0) first = i;
        ++bad;
      }
    }
    if (bad == 0) return "";
    return fmt::format("{} of {} elements differ; first at {}: {}, expected {}", bad, n, first,
                       actual.get_i64(first), expected.get_i64(first));
  }
  Tolerance tol = tolerance_for(expected.dtype());
  int64_t bad = 0;
  int64_t first = -1;
  double max_abs = 0;
  for (int64_t i = 0; i < n; ++i) {
    double a = actual.get_f64(i);
    double b = expected.get_f64(i);
    bool match;
    if (std::isnan(b) || std::isnan(a)) {
      match = std::isnan(a) && std::isnan(b);
    } else if (std::isinf(b) || std::isinf(a)) {
      match = a == b;
    } else {
      double diff = std::fabs(a - b);
      max_abs = std::max(max_abs, diff);
      match = diff <= tol.atol + tol.rtol * std::fabs(b);
    }
    if (!match) {
      if (first < 0) first = i;
      ++bad;
    }
  }
  if (bad == 0) return "";
  return fmt::format(
      "{} of {} elements out of tolerance (rtol {}, atol {}); first at {}: {}, expected {}; max abs "
      "error {:.3g}",
      bad, n, tol.rtol, tol.atol, first, actual.get_f64(first), expected.get_f64(first), max_abs);
}

namespace {

bool is_unsupported_error(const std::string& message) {
  static const char* const kMarkers[] = {": unsupported op ", ": unsupported dtype ", ": unsupported type ",
                                         ": unsupported attribute "};
  for (const char* m : kMarkers) {
    if (message.find(m) != std::string::npos) return true;
  }
  return false;
}

// Drops the leading "<path>: " the importer puts on every message; the test name says it.
std::string strip_path(const std::string& message, const std::string& path) {
  if (message.rfind(path + ": ", 0) == 0) return message.substr(path.size() + 2);
  return message;
}

// Sorted "<prefix>N.pb" files of a data set folder, by N.
std::vector<fs::path> numbered_files(const fs::path& dir, const std::string& prefix) {
  std::vector<std::pair<long, fs::path>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0 || entry.path().extension() != ".pb") continue;
    std::string number = name.substr(prefix.size(), name.size() - prefix.size() - 3);
    if (number.empty() || number.find_first_not_of("0123456789") != std::string::npos) continue;
    found.emplace_back(std::stol(number), entry.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

Result<std::vector<NamedTensor>> read_tensors(const std::vector<fs::path>& files) {
  std::vector<NamedTensor> out;
  for (const fs::path& f : files) {
    NamedTensor t;
    SEQRUN_ASSIGN(t.tensor, onnx_import::read_tensor_proto_file(f.string(), &t.name));
    out.push_back(std::move(t));
  }
  return out;
}

// ONNX's test generator stored bfloat16 tensors as UINT16 (same bits); read them as bf16 where the
// graph says bf16.
Tensor as_dtype_if_bits_match(const Tensor& t, DType want) {
  if (want != DType::bf16 || t.dtype() != DType::u16) return t;
  Tensor out = Tensor::empty(DType::bf16, t.shape());
  if (t.nbytes() > 0) std::memcpy(out.raw(), t.raw(), t.nbytes());
  return out;
}

// Orders the data set's inputs like the graph's inputs: by name when every graph input has a
// same-named tensor, else by position.
Result<std::vector<Tensor>> bind_inputs(const runtime::Session& session,
                                        const std::vector<NamedTensor>& given) {
  std::vector<std::string> names = session.input_names();
  std::vector<Tensor> bound;
  bool by_name = true;
  for (const std::string& name : names) {
    auto it = std::find_if(given.begin(), given.end(), [&](const NamedTensor& t) { return t.name == name; });
    if (it == given.end()) {
      by_name = false;
      break;
    }
    bound.push_back(it->tensor);
  }
  if (!by_name) {
    if (given.size() != names.size()) {
      return make_error("the data set has {} inputs, the graph {}", given.size(), names.size());
    }
    bound.clear();
    for (const NamedTensor& t : given) bound.push_back(t.tensor);
  }
  const auto& declared = session.graph().inputs();
  for (size_t i = 0; i < bound.size(); ++i)
    bound[i] = as_dtype_if_bits_match(bound[i], declared[i]->type().dtype());
  return bound;
}

std::string excluded_reason(const std::map<std::string, std::string>& excluded, const std::string& name) {
  auto it = excluded.find(name);
  if (it != excluded.end()) return it->second;
  for (const auto& [pattern, reason] : excluded) {
    if (pattern.find_first_of("*?[") != std::string::npos && fnmatch(pattern.c_str(), name.c_str(), 0) == 0) {
      return reason;
    }
  }
  return "";
}

}  // namespace

TestResult run_test(const std::string& test_dir, const CheckOptions& options) {
  TestResult result;
  result.name = fs::path(test_dir).filename().string();
  if (result.name.empty()) result.name = fs::path(test_dir).parent_path().filename().string();
  std::string reason = excluded_reason(options.excluded, result.name);
  if (!reason.empty()) {
    result.outcome = Outcome::Skip;
    result.reason = "excluded: " + reason;
    return result;
  }
  auto fail = [&](Outcome outcome, std::string why) {
    result.outcome = outcome;
    result.reason = std::move(why);
    return result;
  };

  std::string model_path = (fs::path(test_dir) / "model.onnx").string();
  auto graph = onnx_import::import_onnx_file(model_path);
  if (!graph) {
    const std::string& message = graph.status().message();
    if (options.skip_unsupported && is_unsupported_error(message)) {
      return fail(Outcome::Skip, "unsupported: " + strip_path(message, model_path));
    }
    return fail(Outcome::Error, "import: " + strip_path(message, model_path));
  }
  runtime::SessionOptions session_options;
  session_options.opt_level = options.opt_level;
  session_options.passes = options.passes;
  session_options.backends = options.backends;
  auto session = runtime::Session::from_graph(std::move(graph).value(), session_options);
  if (!session) return fail(Outcome::Error, "passes: " + session.status().message());
  result.has_graph = true;
  for (const Node* node : session.value()->graph().nodes()) ++result.op_counts[node->op()];
  for (const std::string& op : options.require_ops) {
    if (result.op_counts.count(op) == 0) return fail(Outcome::Fail, "no " + op + " after the passes");
  }
  for (const std::string& op : options.forbid_ops) {
    if (result.op_counts.count(op) != 0) return fail(Outcome::Fail, op + " left after the passes");
  }

  std::vector<fs::path> data_sets;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(test_dir, ec)) {
    if (entry.is_directory(ec) && entry.path().filename().string().rfind("test_data_set_", 0) == 0) {
      data_sets.push_back(entry.path());
    }
  }
  std::sort(data_sets.begin(), data_sets.end());
  if (data_sets.empty()) return fail(Outcome::Error, "no test_data_set_* folder");

  for (const fs::path& set : data_sets) {
    std::string set_name = set.filename().string();
    auto inputs = read_tensors(numbered_files(set, "input_"));
    if (!inputs) return fail(Outcome::Error, set_name + ": " + inputs.status().message());
    auto expected = read_tensors(numbered_files(set, "output_"));
    if (!expected) return fail(Outcome::Error, set_name + ": " + expected.status().message());
    auto bound = bind_inputs(*session.value(), inputs.value());
    if (!bound) return fail(Outcome::Error, set_name + ": " + bound.status().message());
    auto outputs = session.value()->run(bound.value());
    if (!outputs) return fail(Outcome::Error, set_name + ": " + outputs.status().message());
    const auto& out = outputs.value();
    const auto& want = expected.value();
    if (out.size() != want.size()) {
      return fail(Outcome::Fail,
                  fmt::format("{}: {} outputs, expected {}", set_name, out.size(), want.size()));
    }
    std::vector<std::string> names = session.value()->output_names();
    for (size_t i = 0; i < want.size(); ++i) {
      std::string diff = compare_tensors(out[i], as_dtype_if_bits_match(want[i].tensor, out[i].dtype()));
      if (!diff.empty()) {
        return fail(Outcome::Fail, fmt::format("{}: output {} '{}': {}", set_name, i, names[i], diff));
      }
    }
  }
  return result;
}

std::string format_result(const TestResult& result) {
  std::string line = std::string(outcome_name(result.outcome)) + " " + result.name;
  if (!result.reason.empty()) {
    std::string reason = result.reason;
    std::replace(reason.begin(), reason.end(), '\n', ' ');
    line += " (" + reason + ")";
  }
  if (result.has_graph) {
    line += " ops:";
    if (result.op_counts.empty()) line += " none";
    for (const auto& [op, count] : result.op_counts) line += fmt::format(" {}={}", op, count);
  }
  return line;
}

std::string format_summary(const Summary& summary) {
  std::string line = fmt::format("{} passed, {} failed", summary.passed, summary.failed);
  if (summary.skipped > 0) line += fmt::format(", {} skipped", summary.skipped);
  return line;
}

Result<Summary> run_conformance(const std::vector<std::string>& dirs, const CheckOptions& options,
                                std::ostream* out) {
  SEQRUN_ASSIGN(std::vector<std::string> tests, find_test_dirs(dirs));
  Summary summary;
  for (const std::string& dir : tests) {
    TestResult r;
    try {
      r = run_test(dir, options);
    } catch (const std::exception& e) {  // e.g. bad_alloc from a hostile shape: report, keep going
      r.name = fs::path(dir).filename().string();
      r.outcome = Outcome::Error;
      r.reason = std::string("exception: ") + e.what();
    }
    switch (r.outcome) {
      case Outcome::Pass:
        ++summary.passed;
        break;
      case Outcome::Skip:
        ++summary.skipped;
        break;
      case Outcome::Fail:
      case Outcome::Error:
        ++summary.failed;
        break;
    }
    if (out != nullptr) *out << format_result(r) << std::endl;
    summary.results.push_back(std::move(r));
  }
  return summary;
}

}  // namespace seqrun::conformance
