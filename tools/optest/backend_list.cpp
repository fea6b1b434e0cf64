// The op-test table's backend registry: name -> backend, for --backend (see backend_list.h).
#include "tools/optest/backend_list.h"

#include <fmt/format.h>

namespace seqrun::optest {

std::vector<BackendEntry> available_backends() {
  std::vector<BackendEntry> list;
  list.push_back({"cpu", "CPU backend: fast kernels (oneDNN, AVX2/OpenMP), reference kernels for the rest",
                  [] { return &backends::cpu_backend(); }});
  list.push_back({"cpu-reference",
                  "CPU backend with the reference kernels only (bit-exact with the reference)",
                  [] { return &backends::cpu_reference_backend(); }});
  // The CUDA backend adds its entry here when it lands, e.g.
  //   list.push_back({"cuda", "...", [] { return backends::cuda_backend_if_available(); }});
  return list;
}

Result<std::vector<BackendEntry>> select_backends(const std::string& spec) {
  const std::vector<BackendEntry> known = available_backends();
  if (spec == "all") return known;
  std::vector<BackendEntry> chosen;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    if (comma == std::string::npos) comma = spec.size();
    const std::string name = spec.substr(start, comma - start);
    start = comma + 1;
    if (name.empty()) continue;
    bool found = false;
    for (const BackendEntry& e : known) {
      if (e.name == name) {
        chosen.push_back(e);
        found = true;
      }
    }
    if (!found) {
      std::vector<std::string> names;
      for (const BackendEntry& e : known) names.push_back(e.name);
      return make_error("unknown backend '{}' (this build has: {}, or all)", name, fmt::join(names, ", "));
    }
  }
  if (chosen.empty()) return make_error("--backend names no backend");
  return chosen;
}

}  // namespace seqrun::optest
