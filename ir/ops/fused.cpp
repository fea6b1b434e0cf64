// Op schemas: ops that passes produce (FusedLinear, ...), see ir/ops/ops.h.
#include "ir/infer.h"
#include "ir/op_schema.h"
#include "ir/ops/ops.h"

namespace seqrun::ops {

void register_fused_ops(OpRegistry& r) { (void)r; }

}  // namespace seqrun::ops
