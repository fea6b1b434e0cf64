// The backends the op-test table can run, looked up by name (--backend cpu|cpu-reference|cuda|all|a,b).
//
// The names come from backends/registry.h, so a backend registered there (the CUDA backend in a CUDA
// build) appears here without changes. Opening a backend may fail on this machine (a CUDA build without
// a GPU): with --backend all such a backend is reported and skipped; named explicitly, it is an error.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "ir/status.h"

namespace seqrun::optest {

struct BackendEntry {
  std::string name;                                  // what --backend accepts
  std::function<Result<backends::Backend*>()> open;  // an error says why it cannot run here
};

// Every backend compiled into this build, CPU first.
std::vector<BackendEntry> available_backends();

// Resolves a --backend value: "all", one name, or names separated by commas. An unknown name (or one
// this build lacks) is an error naming the known ones.
Result<std::vector<BackendEntry>> select_backends(const std::string& spec);

}  // namespace seqrun::optest
