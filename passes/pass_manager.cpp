// The pass registry, standard pipelines and the runner that verifies after every pass.
#include <algorithm>

#include "ir/infer.h"
#include "ir/verify.h"
#include "passes/approximate_attention.h"
#include "passes/canonicalize.h"
#include "passes/chunk_attention.h"
#include "passes/convert_dtype.h"
#include "passes/derive_decode.h"
#include "passes/fold_batchnorm.h"
#include "passes/fuse_attention.h"
#include "passes/fuse_epilogues.h"
#include "passes/fuse_lti_scan.h"
#include "passes/fuse_mixed_chunk_attention.h"
#include "passes/fuse_scan_body.h"
#include "passes/fuse_ssm_scan.h"
#include "passes/linearize_attention.h"
#include "passes/pass.h"

namespace seqrun::passes {

const std::vector<std::pair<std::string, PassFactory>>& pass_registry() {
  static const std::vector<std::pair<std::string, PassFactory>> registry = {
      {"canonicalize", [] { return std::unique_ptr<Pass>(new CanonicalizePass()); }},
      {"fuse-scan-body", [] { return std::unique_ptr<Pass>(new FuseScanBodyPass()); }},
      {"fuse-ssm-scan", [] { return std::unique_ptr<Pass>(new FuseSsmScanPass()); }},
      {"fuse-lti-scan", [] { return std::unique_ptr<Pass>(new FuseLtiScanPass()); }},
      {"fuse-attention", [] { return std::unique_ptr<Pass>(new FuseAttentionPass()); }},
      {"chunk-attention", [] { return std::unique_ptr<Pass>(new ChunkAttentionPass()); }},
      {"fuse-mixed-chunk-attention", [] { return std::unique_ptr<Pass>(new FuseMixedChunkAttentionPass()); }},
      {"linearize-attention", [] { return std::unique_ptr<Pass>(new LinearizeAttentionPass()); }},
      // Approximate: in no pipeline_for_level list; "approximate-attention=favor:M" picks M (create_pass).
      {"approximate-attention", [] { return std::unique_ptr<Pass>(new ApproximateAttentionPass()); }},
      {"fold-batchnorm", [] { return std::unique_ptr<Pass>(new FoldBatchNormPass()); }},
      {"fuse-epilogues", [] { return std::unique_ptr<Pass>(new FuseEpiloguesPass()); }},
      // Not in -O1: makes a different graph (the step graph); runtime/state.cpp runs it for decoders.
      {"derive-decode", [] { return std::unique_ptr<Pass>(new DeriveDecodePass()); }},
  };
  return registry;
}

std::unique_ptr<Pass> create_pass(const std::string& name) {
  const std::string approximate = "approximate-attention=";
  if (name.rfind(approximate, 0) == 0) {
    return create_approximate_attention_pass(name.substr(approximate.size()));
  }
  // Opt-in, in no pipeline_for_level list: "convert-dtype=bf16" / "convert-dtype=f16".
  const std::string convert_dtype = "convert-dtype=";
  if (name.rfind(convert_dtype, 0) == 0) return create_convert_dtype_pass(name.substr(convert_dtype.size()));
  for (const auto& [n, factory] : pass_registry()) {
    if (n == name) return factory();
  }
  return nullptr;
}

std::vector<std::string> pipeline_for_level(int level) {
  if (level <= 0) return {};
  return {"canonicalize",
          "fuse-scan-body",
          "fuse-ssm-scan",
          "fuse-lti-scan",
          "fuse-attention",
          "chunk-attention",
          "fuse-mixed-chunk-attention",
          "linearize-attention",
          "fold-batchnorm",
          "fuse-epilogues"};
}

Result<std::vector<PassReport>> run_passes(Graph& graph, const std::vector<std::string>& names) {
  std::vector<PassReport> reports;
  for (const std::string& name : names) {
    std::unique_ptr<Pass> pass = create_pass(name);
    if (!pass) {
      std::string known;
      for (const auto& [n, f] : pass_registry()) known += (known.empty() ? "" : ", ") + n;
      return make_error("unknown pass '{}' (known: {})", name, known);
    }
    auto changed = pass->run(graph);
    if (!changed) return changed.status().with_context("pass '" + name + "'");
    if (*changed) {
      Status st = infer_graph_types(graph);
      if (st) st = verify_graph(graph);
      if (!st) return st.with_context("after pass '" + name + "'");
    }
    reports.push_back({name, *changed});
  }
  return reports;
}

}  // namespace seqrun::passes
