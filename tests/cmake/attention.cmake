# fuse-attention evidence: every ONNX `test_attention_*_expanded` test (the Attention function body written
# in primitive ops) and the attention models of tests/data/models (PyTorch exports: GPT-2, Llama, a Llama
# block, nn.TransformerEncoderLayer with a padding mask, the OCR nets' hand-written and nn.MultiheadAttention
# blocks) must still match their reference outputs at -O1, and their graphs after the passes must hold an
# Attention node and no Softmax (--require-op / --forbid-op of seqrun-export check).
file(GLOB SEQRUN_ATTENTION_EXPANDED_TESTS LIST_DIRECTORIES true
     ${PROJECT_SOURCE_DIR}/tests/data/onnx-node/test_attention_*_expanded)
list(SORT SEQRUN_ATTENTION_EXPANDED_TESTS)
add_test(NAME attention_fused_onnx_expanded
         COMMAND $<TARGET_FILE:seqrun-export> check -O1 --require-op Attention --forbid-op Softmax
                 ${SEQRUN_ATTENTION_EXPANDED_TESTS})
set(SEQRUN_ATTENTION_MODELS gpt2_opset14 gpt2_opset17 llama_opset14 llama_opset17 llama_block_opset17
    encoder_padmask_opset14 ocr_crnn_opset9 ocr_crnn_opset11 ocr_crnn_opset13)
list(TRANSFORM SEQRUN_ATTENTION_MODELS PREPEND ${PROJECT_SOURCE_DIR}/tests/data/models/)
add_test(NAME attention_fused_torch_models
         COMMAND $<TARGET_FILE:seqrun-export> check -O1 --require-op Attention --forbid-op Softmax
                 ${SEQRUN_ATTENTION_MODELS})
set_tests_properties(attention_fused_onnx_expanded attention_fused_torch_models
                     PROPERTIES LABELS "conformance;onnx;attention" TIMEOUT 300)

# Block-sparse attention evidence (tests/data/attention/sparse_fixed_*, regenerate with
# `/usr/bin/python3 tests/reference/sparse_attention.py`): PyTorch causal attention whose constant mask is the
# Sparse Transformer "fixed" layout (blocks of 32, 2 local blocks, a summary block every 3), as a masked_fill
# (bool) and as an additive 0/-inf bias. Both match PyTorch's outputs unoptimized and at -O1, where
# chunk-attention recognizes the layout: one ChunkedAttention with sparse_block/local/stride, no mask left
# (no Attention, Softmax, Not); `seqrun inspect` shows the attributes.
set(SEQRUN_SPARSE_MODELS ${PROJECT_SOURCE_DIR}/tests/data/attention/sparse_fixed_fill
    ${PROJECT_SOURCE_DIR}/tests/data/attention/sparse_fixed_bias)
add_test(NAME attention_sparse_O0 COMMAND $<TARGET_FILE:seqrun-export> check -O0 ${SEQRUN_SPARSE_MODELS})
add_test(NAME attention_sparse_O1
         COMMAND $<TARGET_FILE:seqrun-export> check -O1 --require-op ChunkedAttention
                 --forbid-op Attention,Softmax,Not,Where,Add ${SEQRUN_SPARSE_MODELS})
foreach(style fill bias)
  add_test(NAME attention_sparse_inspect_${style}
           COMMAND ${CMAKE_COMMAND}
                   "-DCOMMAND=$<TARGET_FILE:seqrun>|inspect|${PROJECT_SOURCE_DIR}/tests/data/attention/sparse_fixed_${style}/model.onnx"
                   "-DEXPECT_EXIT=0"
                   "-DEXPECT_STDOUT=ChunkedAttention +1@@= ChunkedAttention\\(%q, %k, %v\\) {block_k = 32, block_q = 32, is_causal = 1, scale = 0.25, sparse_block = 32, sparse_local = 2, sparse_stride = 3}"
                   -P ${PROJECT_SOURCE_DIR}/tests/cmake/cli.cmake)
endforeach()
set_tests_properties(attention_sparse_O0 attention_sparse_O1 attention_sparse_inspect_fill
                     attention_sparse_inspect_bias PROPERTIES LABELS "conformance;onnx;attention" TIMEOUT 120)
