// Backends by name, for the command-line tools and the op-test table: "cpu", "cpu-reference" and "cuda".
//
// "cuda" is an error in a build without CUDA and on a machine without a usable GPU; the message starts
// with "no CUDA device" and carries the CUDA error text. A plan placed on "cuda" lists the CPU backend
// after it, so nodes without a CUDA kernel fall back to the CPU (backend_list_by_name).
#pragma once

#include <string>
#include <vector>

#include "backends/backend.h"
#include "ir/status.h"

namespace seqrun::backends {

// The backend names this build knows, in the order --help lists them.
std::vector<std::string> backend_names();

// One backend: "cpu", "cpu-reference" or "cuda".
Result<Backend*> backend_by_name(const std::string& name);

// The placement list for a plan whose user asked for `name`: {cuda, cpu} for "cuda" (CPU fallback for
// nodes without a CUDA kernel), the backend alone otherwise.
Result<std::vector<Backend*>> backend_list_by_name(const std::string& name);

// Whether this build was compiled with the CUDA backend (SEQRUN_HAVE_CUDA).
bool built_with_cuda();

}  // namespace seqrun::backends
