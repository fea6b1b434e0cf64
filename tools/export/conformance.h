// The ONNX conformance runner behind `seqrun-export check`: imports each ONNX backend test folder
// (model.onnx + test_data_set_*/input_N.pb, output_N.pb), runs a pass pipeline, executes every data
// set and compares every output with the expected one.
//
// A test PASSes when every output has the expected dtype and shape and every element matches:
// floats within |a - b| <= atol + rtol * |b| (rtol 1e-3, atol 1e-5; f16/bf16 outputs rtol 1e-2,
// atol 1e-3; NaN matches NaN, an infinity matches the same infinity), integers and bools exactly.
// It FAILs on a mismatch, is an ERROR when import, a pass or execution fails (counted as failed),
// and is a SKIP when excluded by name or, with skip_unsupported, when the model uses an op, dtype,
// type or attribute form the importer does not support.
#pragma once

#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "ir/status.h"
#include "ir/tensor.h"

namespace seqrun::backends {
class Backend;
}  // namespace seqrun::backends

namespace seqrun::conformance {

struct Tolerance {
  double rtol = 1e-3;
  double atol = 1e-5;
};

struct CheckOptions {
  int opt_level = 1;
  std::vector<backends::Backend*> backends;        // placement order; empty = the CPU backend
  std::optional<std::vector<std::string>> passes;  // overrides opt_level when set
  std::map<std::string, std::string> excluded;     // test name (or fnmatch pattern) -> reason
  bool skip_unsupported = false;
  // After the passes, each of these ops must be in the graph / none of these may be (else FAIL):
  // how a test shows a rewrite fired, e.g. require Attention and forbid Softmax.
  std::vector<std::string> require_ops;
  std::vector<std::string> forbid_ops;
};

enum class Outcome { Pass, Fail, Error, Skip };
const char* outcome_name(Outcome o);  // "PASS", "FAIL", "ERROR", "SKIP"

struct TestResult {
  std::string name;  // the test folder's name
  Outcome outcome = Outcome::Pass;
  std::string reason;                    // empty for a plain PASS
  std::map<std::string, int> op_counts;  // ops left in the top-level graph after the passes
  bool has_graph = false;
};

struct Summary {
  int passed = 0;
  int failed = 0;  // FAIL and ERROR
  int skipped = 0;
  std::vector<TestResult> results;
  bool ok() const { return failed == 0; }
};

// Reads an exclude file: one `<test-name>  # reason` per line; blank lines and lines starting with
// '#' are ignored. A name may be an fnmatch pattern (test_sequence_*).
Result<std::map<std::string, std::string>> read_exclude_file(const std::string& path);

// Each entry is a test folder (holds model.onnx) or a folder of test folders. Returns the test
// folders, each folder's tests sorted by name.
Result<std::vector<std::string>> find_test_dirs(const std::vector<std::string>& dirs);

// Compares one output; empty string when it matches, else what differs.
std::string compare_tensors(const Tensor& actual, const Tensor& expected);
Tolerance tolerance_for(DType expected);

// Runs one test folder.
TestResult run_test(const std::string& test_dir, const CheckOptions& options);

// "PASS test_abs ops: Abs=1", "FAIL test_x (output 0 'y': ...) ops: ...".
std::string format_result(const TestResult& result);
// "N passed, M failed" (", K skipped" when K > 0).
std::string format_summary(const Summary& summary);

// Runs every test under `dirs`, writing each result line to `out` (when not null) as it finishes.
Result<Summary> run_conformance(const std::vector<std::string>& dirs, const CheckOptions& options,
                                std::ostream* out);

}  // namespace seqrun::conformance
