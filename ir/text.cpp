// IR text printer and parser (placeholder until implemented).
#include "ir/text.h"

namespace seqrun {
std::string print_graph(const Graph& graph, const PrintOptions&) { return "graph " + graph.name() + " {...}"; }
Result<std::unique_ptr<Graph>> parse_graph(std::string_view) { return Status::error("text parser not built yet"); }
}  // namespace seqrun
