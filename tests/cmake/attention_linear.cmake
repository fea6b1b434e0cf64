# Softmax-free and approximate attention evidence (tests/data/attention, regenerate with
# `/usr/bin/python3 tests/reference/linear_attention_models.py` and `tests/reference/flash_layer.py`):
#  - every PyTorch linear-transformer and FLASH export matches PyTorch's saved outputs unoptimized (-O0, the
#    quadratic graph: no LinearAttention / MixedChunkAttention yet) and optimized (-O1);
#  - at -O1 the causal linear transformers hold a LinearAttention and no MatMul, Trilu or Where is left of the
#    quadratic scores (linearize-attention); the FLASH layers hold one MixedChunkAttention and none of the
#    chunked MatMul / Relu / Pow / CumSum / Pad (fuse-mixed-chunk-attention). The non-causal linear
#    transformers become Q(KᵀV) in plain MatMuls; their structure is checked in test_linearize_attention.
#  - `seqrun inspect/run --approximate favor:M` prints the measured error and speed-up next to the FAVOR+ graph.
set(SEQRUN_ATTENTION_DATA ${PROJECT_SOURCE_DIR}/tests/data/attention)
file(GLOB SEQRUN_LINEAR_CAUSAL LIST_DIRECTORIES true ${SEQRUN_ATTENTION_DATA}/linear_causal_*)
file(GLOB SEQRUN_LINEAR_NONCAUSAL LIST_DIRECTORIES true ${SEQRUN_ATTENTION_DATA}/linear_noncausal_*)
file(GLOB SEQRUN_FLASH_LAYERS LIST_DIRECTORIES true ${SEQRUN_ATTENTION_DATA}/flash_layer*)
list(SORT SEQRUN_LINEAR_CAUSAL)
list(SORT SEQRUN_LINEAR_NONCAUSAL)
list(SORT SEQRUN_FLASH_LAYERS)

add_test(NAME attention_linear_O0
         COMMAND $<TARGET_FILE:seqrun-export> check -O0 --forbid-op LinearAttention,MixedChunkAttention
                 ${SEQRUN_LINEAR_CAUSAL} ${SEQRUN_LINEAR_NONCAUSAL} ${SEQRUN_FLASH_LAYERS})
add_test(NAME attention_linear_causal_O1
         COMMAND $<TARGET_FILE:seqrun-export> check -O1 --require-op LinearAttention --forbid-op MatMul,Trilu,Where
                 ${SEQRUN_LINEAR_CAUSAL})
add_test(NAME attention_linear_noncausal_O1
         COMMAND $<TARGET_FILE:seqrun-export> check -O1 --forbid-op LinearAttention ${SEQRUN_LINEAR_NONCAUSAL})
add_test(NAME attention_mixed_chunk_O1
         COMMAND $<TARGET_FILE:seqrun-export> check -O1 --require-op MixedChunkAttention
                 --forbid-op MatMul,Relu,Pow,CumSum,Pad ${SEQRUN_FLASH_LAYERS})
set_tests_properties(attention_linear_O0 attention_linear_causal_O1 attention_linear_noncausal_O1
                     attention_mixed_chunk_O1 PROPERTIES LABELS "conformance;onnx;attention" TIMEOUT 300)

# --approximate through the CLI checker of cli.cmake (run as a script: exit code + stdout regexes). The Llama
# block (static [1, 16, 64] hidden states, causal softmax attention) is the model: inspect measures on N(0, 1)
# inputs; run measures on the block's own output, which `seqrun bench` writes first (a fixture).
set(SEQRUN_APPROX_MODEL ${PROJECT_SOURCE_DIR}/tests/data/models/llama_block_opset17/model.onnx)
set(SEQRUN_APPROX_OUT ${CMAKE_CURRENT_BINARY_DIR}/attention_approximate)
set(SEQRUN_APPROX_LINE
    "approximate favor:64: relative error [0-9.e+-]+ \\(\\|\\|y-y_exact\\|\\|/\\|\\|y_exact\\|\\|\\), speed-up [0-9.]+x")
add_test(NAME attention_approximate_inspect
         COMMAND ${CMAKE_COMMAND} "-DCOMMAND=$<TARGET_FILE:seqrun>|inspect|${SEQRUN_APPROX_MODEL}|--approximate|favor:64"
                 "-DEXPECT_EXIT=0"
                 "-DEXPECT_STDOUT=${SEQRUN_APPROX_LINE}@@approximate-attention=favor:64 \\(changed\\)@@LinearAttention"
                 -P ${PROJECT_SOURCE_DIR}/tests/cmake/cli.cmake)
add_test(NAME attention_approximate_input_setup
         COMMAND $<TARGET_FILE:seqrun> bench ${SEQRUN_APPROX_MODEL} --random-inputs --warmup 0 --repeat 1
                 --output-dir ${SEQRUN_APPROX_OUT})
set_tests_properties(attention_approximate_input_setup PROPERTIES FIXTURES_SETUP attention_approximate_input)
add_test(NAME attention_approximate_run
         COMMAND ${CMAKE_COMMAND}
                 "-DCOMMAND=$<TARGET_FILE:seqrun>|run|${SEQRUN_APPROX_MODEL}|-i|hidden_states=${SEQRUN_APPROX_OUT}/output.npy|--approximate|favor:64"
                 "-DEXPECT_EXIT=0" "-DEXPECT_STDOUT=^output: f32\\[1, 16, 64\\]@@${SEQRUN_APPROX_LINE}"
                 -P ${PROJECT_SOURCE_DIR}/tests/cmake/cli.cmake)
set_tests_properties(attention_approximate_run PROPERTIES FIXTURES_REQUIRED attention_approximate_input)
add_test(NAME attention_approximate_bad_spec
         COMMAND ${CMAKE_COMMAND} "-DCOMMAND=$<TARGET_FILE:seqrun>|inspect|${SEQRUN_APPROX_MODEL}|--approximate|favor:0"
                 "-DEXPECT_EXIT=2" "-DEXPECT_STDERR=favor:0" "-DONE_ERROR_LINE=1"
                 -P ${PROJECT_SOURCE_DIR}/tests/cmake/cli.cmake)
set_tests_properties(attention_approximate_inspect attention_approximate_input_setup attention_approximate_run
                     attention_approximate_bad_spec PROPERTIES LABELS "cli;attention" TIMEOUT 120)
