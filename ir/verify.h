// The IR verifier: run after import, load and every pass (debug builds) so a broken graph is
// reported where it broke. Checks: every node's op is registered, arity and attribute types match
// the schema, use lists agree with node inputs, every input is defined before use (the stored node
// order is topological, no cycles), graph outputs are defined, names are unique, nested bodies
// verify and their capture counts match their node's.
#pragma once

#include "ir/graph.h"
#include "ir/status.h"

namespace seqrun {

Status verify_graph(const Graph& graph);

}  // namespace seqrun
