// Backends by name (see registry.h).
#include "backends/registry.h"

#if SEQRUN_HAVE_CUDA
#include "backends/cuda/cuda_backend.h"
#endif

namespace seqrun::backends {

std::vector<std::string> backend_names() {
  return {"cpu", "cpu-reference", "cuda"};
}

bool built_with_cuda() {
#if SEQRUN_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

Result<Backend*> backend_by_name(const std::string& name) {
  if (name == "cpu") return &cpu_backend();
  if (name == "cpu-reference") return &cpu_reference_backend();
  if (name == "cuda") {
#if SEQRUN_HAVE_CUDA
    return cuda_backend();
#else
    return make_error(
        "no CUDA device (this build of seqrun has no CUDA backend: configure with -DSEQRUN_CUDA=ON)");
#endif
  }
  std::string known;
  for (const std::string& n : backend_names()) known += (known.empty() ? "" : ", ") + n;
  return make_error("unknown backend '{}' (known: {})", name, known);
}

Result<std::vector<Backend*>> backend_list_by_name(const std::string& name) {
  SEQRUN_ASSIGN(Backend * backend, backend_by_name(name));
  std::vector<Backend*> list = {backend};
  if (backend->device() != DeviceKind::CPU) list.push_back(&cpu_backend());
  return list;
}

}  // namespace seqrun::backends
