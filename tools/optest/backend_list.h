// The backends the op-test table can run, looked up by name (--backend cpu|cpu-reference|all|a,b).
//
// Each entry opens its backend on demand and returns null when the backend exists in the build but
// cannot run here (a CUDA build on a machine without a GPU), so the table reports it as unavailable
// instead of failing. A new backend adds one entry in backend_list.cpp.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "ir/status.h"

namespace seqrun::optest {

struct BackendEntry {
  std::string name;                          // what --backend accepts
  std::string description;                   // one line for --help / --list-backends
  std::function<backends::Backend*()> open;  // null result: not usable on this machine
};

// Every backend compiled into this build, CPU first.
std::vector<BackendEntry> available_backends();

// Resolves a --backend value: "all", one name, or names separated by commas. Unknown names are an
// error that lists the known ones.
Result<std::vector<BackendEntry>> select_backends(const std::string& spec);

}  // namespace seqrun::optest
