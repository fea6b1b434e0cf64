// .seqrun save/load (placeholder until implemented).
#include "ir/serialize.h"

#include "ir/seqrun_generated.h"

namespace seqrun {
Status save_model(const Graph&, const std::string&, const SaveOptions&) { return Status::error("not built yet"); }
std::string serialize_model(const Graph&, const SaveOptions&) { return {}; }
Result<ModelFile> load_model(const std::string& path) { return Status::error(path + ": loader not built yet"); }
Result<ModelFile> load_model_from_memory(const uint8_t*, size_t, const std::string& name, std::shared_ptr<const void>) {
  return Status::error(name + ": loader not built yet");
}
}  // namespace seqrun
