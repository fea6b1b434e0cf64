# ctest entries for fuse-scan-body: the `_expanded` ONNX conformance tests of LinearAttention and
# CausalConvWithState (the ops spelled out as Scan / Conv subgraphs) must match their expected outputs at -O1
# with the fused op in the post-pass op list and the unfused form gone (`seqrun-export check --require-op
# --forbid-op`). That a Scan the pass does not recognise still runs is tested in tests/unit/test_fuse_scan_body.cpp.

set(SEQRUN_ONNX_NODE_DIR ${PROJECT_SOURCE_DIR}/tests/data/onnx-node)

set(scan_body_linear_attention_tests)
foreach(name linear linear_t1_no_past gated delta gated_delta gated_delta_gqa gated_delta_mqa explicit_scale
             prefill_with_past)
  list(APPEND scan_body_linear_attention_tests ${SEQRUN_ONNX_NODE_DIR}/test_linear_attention_${name}_expanded)
endforeach()
add_test(NAME scan_body_linear_attention_O1
         COMMAND $<TARGET_FILE:seqrun-export> check -O1 --require-op LinearAttention --forbid-op Scan
                 ${scan_body_linear_attention_tests})

set(scan_body_causal_conv_tests)
foreach(name basic b1_c1_degenerate fp16 kernel_size_one silu silu_fp16 swish_alias with_bias with_past_state)
  list(APPEND scan_body_causal_conv_tests ${SEQRUN_ONNX_NODE_DIR}/test_causal_conv_with_state_${name}_expanded)
endforeach()
add_test(NAME scan_body_causal_conv_O1
         COMMAND $<TARGET_FILE:seqrun-export> check -O1 --require-op CausalConvWithState
                 --forbid-op Conv,Sigmoid,Slice ${scan_body_causal_conv_tests})

set_tests_properties(scan_body_linear_attention_O1 scan_body_causal_conv_O1
                     PROPERTIES LABELS "conformance;onnx;passes" TIMEOUT 120)
