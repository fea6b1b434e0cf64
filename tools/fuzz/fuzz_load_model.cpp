// libFuzzer target for the model loader: any bytes must load or fail with one error line, never crash,
// hang or allocate without bound; anything that loads must verify, print, and survive save + load unchanged.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ir/serialize.h"
#include "ir/text.h"
#include "ir/verify.h"

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_load_model: %s\n%s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto loaded = seqrun::load_model_from_memory(data, size, "fuzz", nullptr);
  if (!loaded.is_ok()) {
    const std::string& message = loaded.status().message();
    if (message.rfind("fuzz: ", 0) != 0 || message.find('\n') != std::string::npos) {
      fail("error is not one line naming the input", message);
    }
    return 0;
  }
  const seqrun::Graph& graph = *loaded->graph;
  seqrun::Status verified = seqrun::verify_graph(graph);
  if (!verified.is_ok()) fail("loaded graph does not verify", verified.message());

  seqrun::PrintOptions print_options;
  print_options.print_weights = false;
  const std::string text = seqrun::print_graph(graph, print_options);

  // Writing reads every weight byte (ASan checks they lie in the buffer); the copy must load back equal.
  seqrun::SaveOptions save_options;
  save_options.producer = loaded->producer;
  save_options.metadata = loaded->metadata;
  const std::string bytes = seqrun::serialize_model(graph, save_options);
  auto reloaded = seqrun::load_model_from_memory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                                 "reloaded", nullptr);
  if (!reloaded.is_ok()) fail("re-serialized model does not load", reloaded.status().message());
  if (seqrun::print_graph(*reloaded->graph, print_options) != text)
    fail("round trip changed the graph", text);
  if (reloaded->producer != loaded->producer || reloaded->metadata != loaded->metadata) {
    fail("round trip changed producer or metadata", loaded->producer);
  }
  return 0;
}
