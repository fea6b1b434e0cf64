# ctest entries for the execution plan on the command line: `seqrun inspect --memory / --placement
# [--input-shape NAME=DIMS]` and `seqrun run --profile trace.json`. They reuse seqrun_cli_test from cli.cmake
# (included first: the globbed *.cmake files are sorted), which checks exit codes, stdout/stderr regexes and the
# one-error-line convention. Models: tests/data/cli (see cli.cmake) and tests/data/models.
if(NOT COMMAND seqrun_cli_test)
  include(${CMAKE_CURRENT_LIST_DIR}/cli.cmake)
endif()

set(SEQRUN_MODELS_DATA "${PROJECT_SOURCE_DIR}/tests/data/models")

# ---- help ------------------------------------------------------------------------------------------------
seqrun_cli_test(plan_inspect_help EXIT 0 ARGS inspect --help STDOUT "--memory" "--placement" "--input-shape")
seqrun_cli_test(plan_run_help EXIT 0 ARGS run --help STDOUT "--profile")

# ---- inspect --memory ---------------------------------------------------------------------------------
# linear.onnx at -O0 with x = 16x4: the only arena buffer is xw = x @ W, f32[16, 3] = 192 bytes (y is the
# pinned output), so arena = lower bound = no-reuse sum = 192; W + b are 60 bytes; x is 256 bytes, y 192.
seqrun_cli_test(plan_inspect_memory EXIT 0 ARGS inspect ${SEQRUN_CLI_DATA}/linear.onnx -O0 --memory
                --input-shape x=16x4
                STDOUT "input shapes: x=16x4\n" "\n  arena: 192 bytes\n" "\n  lower bound: 192 bytes\n"
                "\n  no-reuse sum: 192 bytes\n" "\n  arena / lower bound: 1.00\n" "weights: 60 bytes"
                "pinned inputs: 256 bytes, pinned outputs: 192 bytes")
seqrun_cli_test(plan_inspect_memory_json EXIT 0 ARGS inspect ${SEQRUN_CLI_DATA}/linear.onnx -O0 --memory
                --input-shape x=16x4 --format json
                STDOUT "^{" "\"arena_bytes\": 192" "\"lower_bound_bytes\": 192" "\"no_reuse_bytes\": 192"
                "\"reference_executor\": false")
# log.onnx has a static input: no --input-shape needed; y = Log(x) is the pinned output, so the arena is empty.
seqrun_cli_test(plan_inspect_memory_static EXIT 0 ARGS inspect ${SEQRUN_CLI_DATA}/log.onnx --memory
                STDOUT "input shapes: x=3\n" "\n  arena: 0 bytes\n" "\n  no-reuse sum: 0 bytes\n")
# A real model: the GPT-2-style export plans completely (no reference fallback) and reuses memory.
seqrun_cli_test(plan_inspect_memory_gpt2 EXIT 0 ARGS inspect ${SEQRUN_MODELS_DATA}/gpt2_opset17/model.onnx
                --memory --input-shape input_ids=1x16
                STDOUT "\n  arena: [1-9][0-9]* bytes\n" "\n  lower bound: [1-9][0-9]* bytes\n"
                "\n  no-reuse sum: [1-9][0-9]* bytes\n" "alias values: [1-9]")

# ---- inspect --placement ------------------------------------------------------------------------------
seqrun_cli_test(plan_inspect_placement EXIT 0 ARGS inspect ${SEQRUN_CLI_DATA}/two_outputs.onnx --placement
                --input-shape a=3 --input-shape b=3
                STDOUT "placement: 2 steps\n" "\n  Add +sum +cpu +[^ \n]+\n" "\n  Mul +prod +cpu +[^ \n]+\n")
seqrun_cli_test(plan_inspect_placement_alias EXIT 0 ARGS inspect ${SEQRUN_MODELS_DATA}/gpt2_opset17/model.onnx
                --placement --input-shape input_ids=1x8 STDOUT "\n  Reshape +[^ ]+ +- +alias\n")

# ---- inspect: errors, each one line naming the culprit ---------------------------------------------------
seqrun_cli_test(plan_inspect_memory_symbolic EXIT 1 ARGS inspect ${SEQRUN_CLI_DATA}/linear.onnx --memory
                STDERR "input 'x' has the shape f32\\[batch, 4\\]" "--input-shape x=" ONE_ERROR_LINE)
seqrun_cli_test(plan_inspect_memory_unknown_input EXIT 1 ARGS inspect ${SEQRUN_CLI_DATA}/linear.onnx --memory
                --input-shape z=1x4 STDERR "no input 'z' \\(its inputs: 'x'\\)" ONE_ERROR_LINE)
seqrun_cli_test(plan_inspect_memory_wrong_dim EXIT 1 ARGS inspect ${SEQRUN_CLI_DATA}/linear.onnx --memory
                --input-shape x=2x5 STDERR "input 'x'" "dim 1 must be 4" ONE_ERROR_LINE)
seqrun_cli_test(plan_inspect_memory_malformed EXIT 2 ARGS inspect ${SEQRUN_CLI_DATA}/linear.onnx --memory
                --input-shape x=2xq STDERR "--input-shape 'x=2xq'" ONE_ERROR_LINE)
seqrun_cli_test(plan_inspect_memory_twice EXIT 2 ARGS inspect ${SEQRUN_CLI_DATA}/linear.onnx --memory
                --input-shape x=2x4 --input-shape x=3x4 STDERR "input 'x' is given twice" ONE_ERROR_LINE)
seqrun_cli_test(plan_inspect_shape_without_plan EXIT 2 ARGS inspect ${SEQRUN_CLI_DATA}/linear.onnx
                --input-shape x=2x4 STDERR "--input-shape only applies to --memory and --placement"
                ONE_ERROR_LINE)
# gpt2's position table has 32 rows: a 64-token binding fails while folding, naming the node.
seqrun_cli_test(plan_inspect_memory_out_of_range EXIT 1 ARGS inspect ${SEQRUN_MODELS_DATA}/gpt2_opset17/model.onnx
                --memory --input-shape input_ids=1x64 STDERR "Gather '/wpe/Gather'" ONE_ERROR_LINE)

# ---- run --profile -------------------------------------------------------------------------------------
seqrun_cli_test(plan_run_profile EXIT 0 CLEAN ${SEQRUN_CLI_OUT}/profile
                ARGS run ${SEQRUN_CLI_DATA}/linear.onnx -O0 -i x=${SEQRUN_CLI_DATA}/linear_x.npy -o ${SEQRUN_CLI_OUT}/profile
                --profile ${SEQRUN_CLI_OUT}/profile_trace.json
                STDOUT "^y: f32\\[2, 3\\] min=0.625 max=4.375 mean=2.47917 -> [^\n]*y\\.npy\n"
                "\nprofile: 2 events -> [^\n]*profile_trace\\.json\n$")
set_tests_properties(cli_plan_run_profile PROPERTIES FIXTURES_SETUP cli_profile_trace)
# The trace: one complete ("X") event per node with its op, node name and shapes. ('.' stands for '[' and ']'
# below: brackets would keep CMake from splitting the pattern list.)
add_test(NAME cli_plan_run_profile_trace
         COMMAND ${CMAKE_COMMAND} "-DCOMMAND=${CMAKE_COMMAND}|-E|cat|${SEQRUN_CLI_OUT}/profile_trace.json"
                 "-DEXPECT_EXIT=0"
                 "-DEXPECT_STDOUT=^{\"traceEvents\": @@\"name\":\"MatMul\"@@\"name\":\"Add\"@@\"ph\":\"X\"@@\"node\":\"matmul\"@@\"node\":\"add_bias\"@@\"input_shapes\":..2,4.,.4,3..@@\"output_shapes\":..2,3.."
                 -P ${SEQRUN_CLI_CHECKER})
set_tests_properties(cli_plan_run_profile_trace PROPERTIES FIXTURES_REQUIRED cli_profile_trace LABELS "cli")
add_test(NAME cli_plan_run_profile_output_matches_numpy
         COMMAND ${CMAKE_COMMAND} -E compare_files ${SEQRUN_CLI_OUT}/profile/y.npy
                 ${SEQRUN_CLI_DATA}/linear_y_expected.npy)
set_tests_properties(cli_plan_run_profile_output_matches_numpy PROPERTIES FIXTURES_REQUIRED cli_profile_trace
                                                                           LABELS "cli")
seqrun_cli_test(plan_run_profile_unwritable EXIT 1 ARGS run ${SEQRUN_CLI_DATA}/linear.onnx
                -i x=${SEQRUN_CLI_DATA}/linear_x.npy --profile /nonexistent/dir/trace.json
                STDERR "--profile: /nonexistent/dir/trace.json" ONE_ERROR_LINE)
