// The op-test table's backend list: backends/registry.h's names, filtered to this build (see backend_list.h).
#include "tools/optest/backend_list.h"

#include <algorithm>

#include "backends/registry.h"

namespace seqrun::optest {

std::vector<BackendEntry> available_backends() {
  std::vector<BackendEntry> list;
  for (const std::string& name : backends::backend_names()) {
    if (name == "cuda" && !backends::built_with_cuda()) continue;
    list.push_back({name, [name] { return backends::backend_by_name(name); }});
  }
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
    auto it = std::find_if(known.begin(), known.end(), [&](const BackendEntry& e) { return e.name == name; });
    if (it == known.end()) {
      // The registry's message says why: unknown name, or a backend this build was compiled without.
      Result<backends::Backend*> missing = backends::backend_by_name(name);
      if (!missing.is_ok()) return missing.status();
      return make_error("backend '{}' is not available in this build", name);
    }
    chosen.push_back(*it);
  }
  if (chosen.empty()) return make_error("--backend names no backend");
  return chosen;
}

}  // namespace seqrun::optest
