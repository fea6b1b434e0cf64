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
