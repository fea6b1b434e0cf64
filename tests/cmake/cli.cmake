# ctest entries that run the `seqrun` command line on the tiny models in tests/data/cli (regenerate them with
# `/usr/bin/python3 tests/reference/gen_cli_models.py`, which also prints the summary lines checked below).
#
# This file has two roles. Included from tests/CMakeLists.txt it adds the tests. Run as a script
# (`cmake -DCOMMAND=... -P cli.cmake`) it is the checker each test uses: it runs one command and checks its
# exit code, its stdout and stderr against regexes, and that a failing command printed exactly one
# "seqrun: error: ..." line — ctest's PASS_REGULAR_EXPRESSION alone would ignore the exit code.
#
# Checker variables: COMMAND (arguments separated by '|'), EXPECT_EXIT, EXPECT_STDOUT / EXPECT_STDERR
# (regexes separated by '@@', each must match), ONE_ERROR_LINE (stderr must be one "seqrun: error:" line),
# CLEAN_DIR (removed before the run, so stale outputs never satisfy a later comparison).

if(CMAKE_SCRIPT_MODE_FILE)
  string(REPLACE "|" ";" command "${COMMAND}")
  if(CLEAN_DIR)
    file(REMOVE_RECURSE "${CLEAN_DIR}")
  endif()
  execute_process(COMMAND ${command} RESULT_VARIABLE exit_code OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("command: ${command}\nexit code: ${exit_code}\n--- stdout ---\n${out}--- stderr ---\n${err}--------------")
  if(NOT "${exit_code}" STREQUAL "${EXPECT_EXIT}")
    message(FATAL_ERROR "expected exit code ${EXPECT_EXIT}, got ${exit_code}")
  endif()
  foreach(stream stdout stderr)
    if(stream STREQUAL "stdout")
      set(text "${out}")
      set(patterns "${EXPECT_STDOUT}")
    else()
      set(text "${err}")
      set(patterns "${EXPECT_STDERR}")
    endif()
    if(patterns)
      string(REPLACE "@@" ";" patterns "${patterns}")
      foreach(pattern IN LISTS patterns)
        if(NOT text MATCHES "${pattern}")
          message(FATAL_ERROR "${stream} does not match: ${pattern}")
        endif()
      endforeach()
    endif()
  endforeach()
  if(ONE_ERROR_LINE AND NOT err MATCHES "^seqrun: error: [^\n]+\n$")
    message(FATAL_ERROR "stderr is not exactly one 'seqrun: error: ...' line")
  endif()
  return()
endif()

set(SEQRUN_CLI_CHECKER "${CMAKE_CURRENT_LIST_FILE}")
set(SEQRUN_CLI_DATA "${PROJECT_SOURCE_DIR}/tests/data/cli")
set(SEQRUN_CLI_OUT "${CMAKE_CURRENT_BINARY_DIR}/cli_out")

# seqrun_cli_test(NAME EXIT CODE ARGS a b ... [STDOUT re ...] [STDERR re ...] [ONE_ERROR_LINE] [CLEAN dir])
function(seqrun_cli_test name)
  cmake_parse_arguments(PARSE_ARGV 1 T "ONE_ERROR_LINE" "EXIT;CLEAN" "ARGS;STDOUT;STDERR")
  list(JOIN T_ARGS "|" command)
  list(JOIN T_STDOUT "@@" stdout_patterns)
  list(JOIN T_STDERR "@@" stderr_patterns)
  add_test(NAME cli_${name}
           COMMAND ${CMAKE_COMMAND} "-DCOMMAND=$<TARGET_FILE:seqrun>|${command}" "-DEXPECT_EXIT=${T_EXIT}"
                   "-DEXPECT_STDOUT=${stdout_patterns}" "-DEXPECT_STDERR=${stderr_patterns}"
                   "-DONE_ERROR_LINE=${T_ONE_ERROR_LINE}" "-DCLEAN_DIR=${T_CLEAN}" -P ${SEQRUN_CLI_CHECKER})
  set_tests_properties(cli_${name} PROPERTIES LABELS "cli" TIMEOUT 60)
endfunction()

# ---- help and version --------------------------------------------------------------------------------
seqrun_cli_test(help EXIT 0 ARGS --help STDOUT "inspect" "run" "Examples:" "--log-level" "--version")
seqrun_cli_test(inspect_help EXIT 0 ARGS inspect --help STDOUT "MODEL" "--format" "-O,--opt-level" "--passes"
                "--elide-weights" "Examples:")
seqrun_cli_test(run_help EXIT 0 ARGS run --help STDOUT "--input" "--output-dir" "--check-finite" "--threads"
                "Examples:")
seqrun_cli_test(version EXIT 0 ARGS --version STDOUT "^seqrun [0-9]+\\.[0-9]+\\.[0-9]+")

# ---- inspect -----------------------------------------------------------------------------------------
# linear.onnx: y = x @ W + b, W f32[4, 3] (48 bytes) and b f32[3] (12 bytes).
seqrun_cli_test(inspect_text EXIT 0 ARGS inspect ${SEQRUN_CLI_DATA}/linear.onnx
                STDOUT "\\(onnx\\)" "inputs:\n  x: f32\\[batch, 4\\]" "outputs:\n  y: f32\\[batch, 3\\]"
                "ops: 1 nodes" "  FusedLinear +1\n" "weights: 2 tensors, 60 bytes" "passes: canonicalize"
                "fuse-epilogues \\(changed\\)")
# -O0 shows the graph as imported: MatMul + Add.
seqrun_cli_test(inspect_text_O0 EXIT 0 ARGS inspect ${SEQRUN_CLI_DATA}/linear.onnx -O0
                STDOUT "ops: 2 nodes" "  Add +1\n" "  MatMul +1\n")
seqrun_cli_test(inspect_json EXIT 0 ARGS inspect ${SEQRUN_CLI_DATA}/linear.onnx --format json
                STDOUT "^{" "\"format\": \"onnx\"" "\"name\": \"x\"" "\"batch\"" "\"FusedLinear\": 1" "\"bytes\": 60"
                "\"count\": 2" "\"ir\": ")
seqrun_cli_test(inspect_O0 EXIT 0 ARGS inspect ${SEQRUN_CLI_DATA}/linear.onnx -O0 STDOUT "passes: none")
seqrun_cli_test(inspect_unknown_pass EXIT 1 ARGS inspect ${SEQRUN_CLI_DATA}/linear.onnx --passes bogus
                STDERR "unknown pass 'bogus'" ONE_ERROR_LINE)
seqrun_cli_test(inspect_missing_model EXIT 1 ARGS inspect ${SEQRUN_CLI_DATA}/no_such_model.onnx
                STDERR "no_such_model.onnx" ONE_ERROR_LINE)
seqrun_cli_test(inspect_bad_format EXIT 2 ARGS inspect ${SEQRUN_CLI_DATA}/linear.onnx --format yaml
                STDERR "--format" ONE_ERROR_LINE)

# ---- run: results --------------------------------------------------------------------------------------
# Expected summaries and files come from gen_cli_models.py (numpy); outputs must match numpy byte for byte.
seqrun_cli_test(run_linear EXIT 0 CLEAN ${SEQRUN_CLI_OUT}/linear
                ARGS run ${SEQRUN_CLI_DATA}/linear.onnx --input x=${SEQRUN_CLI_DATA}/linear_x.npy
                --output-dir ${SEQRUN_CLI_OUT}/linear
                STDOUT "^y: f32\\[2, 3\\] min=0.625 max=4.375 mean=2.47917 -> [^\n]*y\\.npy\n$")
set_tests_properties(cli_run_linear PROPERTIES FIXTURES_SETUP cli_linear_out)
add_test(NAME cli_run_linear_output_matches_numpy
         COMMAND ${CMAKE_COMMAND} -E compare_files ${SEQRUN_CLI_OUT}/linear/y.npy
                 ${SEQRUN_CLI_DATA}/linear_y_expected.npy)
set_tests_properties(cli_run_linear_output_matches_numpy PROPERTIES FIXTURES_REQUIRED cli_linear_out LABELS "cli")

seqrun_cli_test(run_linear_O0_threads EXIT 0 ARGS run ${SEQRUN_CLI_DATA}/linear.onnx -O0 --threads 1
                -i x=${SEQRUN_CLI_DATA}/linear_x.npy STDOUT "^y: f32\\[2, 3\\] min=0.625 max=4.375 mean=2.47917\n$")

seqrun_cli_test(run_two_outputs EXIT 0 CLEAN ${SEQRUN_CLI_OUT}/two
                ARGS run ${SEQRUN_CLI_DATA}/two_outputs.onnx -i a=${SEQRUN_CLI_DATA}/two_outputs_a.npy
                -i b=${SEQRUN_CLI_DATA}/two_outputs_b.npy -o ${SEQRUN_CLI_OUT}/two
                STDOUT "out/sum: f32\\[3\\] min=-2 max=1.5 mean=-0.5 -> [^\n]*out_sum\\.npy\n"
                "prod:0: f32\\[3\\] min=-8 max=0.5 mean=-4.5 -> [^\n]*prod_0\\.npy\n")
set_tests_properties(cli_run_two_outputs PROPERTIES FIXTURES_SETUP cli_two_out)
foreach(pair "out_sum;two_outputs_sum_expected" "prod_0;two_outputs_prod_expected")
  list(GET pair 0 produced)
  list(GET pair 1 expected)
  add_test(NAME cli_run_two_outputs_${produced}_matches_numpy
           COMMAND ${CMAKE_COMMAND} -E compare_files ${SEQRUN_CLI_OUT}/two/${produced}.npy
                   ${SEQRUN_CLI_DATA}/${expected}.npy)
  set_tests_properties(cli_run_two_outputs_${produced}_matches_numpy PROPERTIES FIXTURES_REQUIRED cli_two_out
                                                                                 LABELS "cli")
endforeach()

# log(-1) is NaN: counted in the summary, and an error naming the node under --check-finite.
seqrun_cli_test(run_nan_count EXIT 0 ARGS run ${SEQRUN_CLI_DATA}/log.onnx -i x=${SEQRUN_CLI_DATA}/log_x.npy
                STDOUT "^y: f32\\[3\\] min=0 max=1.38629 mean=0.693147 nan=1\n$")
seqrun_cli_test(run_check_finite EXIT 1 ARGS run ${SEQRUN_CLI_DATA}/log.onnx -i x=${SEQRUN_CLI_DATA}/log_x.npy
                --check-finite STDERR "log_node" ONE_ERROR_LINE)

# ---- run: errors, each one line naming the culprit -----------------------------------------------------
seqrun_cli_test(run_missing_input EXIT 1 ARGS run ${SEQRUN_CLI_DATA}/linear.onnx
                STDERR "missing input 'x'" ONE_ERROR_LINE)
seqrun_cli_test(run_unknown_input EXIT 1 ARGS run ${SEQRUN_CLI_DATA}/linear.onnx
                -i x=${SEQRUN_CLI_DATA}/linear_x.npy -i z=${SEQRUN_CLI_DATA}/linear_x.npy
                STDERR "unknown input 'z' \\(the model's inputs: 'x'\\)" ONE_ERROR_LINE)
seqrun_cli_test(run_malformed_input EXIT 2 ARGS run ${SEQRUN_CLI_DATA}/linear.onnx
                --input ${SEQRUN_CLI_DATA}/linear_x.npy STDERR "--input '[^']*linear_x.npy': expected NAME=FILE.npy"
                ONE_ERROR_LINE)
seqrun_cli_test(run_duplicate_input EXIT 2 ARGS run ${SEQRUN_CLI_DATA}/linear.onnx
                -i x=${SEQRUN_CLI_DATA}/linear_x.npy -i x=${SEQRUN_CLI_DATA}/linear_x.npy
                STDERR "input 'x' is given twice" ONE_ERROR_LINE)
seqrun_cli_test(run_unreadable_npy EXIT 1 ARGS run ${SEQRUN_CLI_DATA}/linear.onnx
                -i x=${PROJECT_SOURCE_DIR}/tests/data/npy/f32_truncated_data.npy
                STDERR "input 'x': [^\n]*f32_truncated_data.npy: [^\n]*truncated" ONE_ERROR_LINE)
seqrun_cli_test(run_missing_npy EXIT 1 ARGS run ${SEQRUN_CLI_DATA}/linear.onnx -i x=${SEQRUN_CLI_DATA}/nope.npy
                STDERR "input 'x': [^\n]*nope.npy" ONE_ERROR_LINE)
seqrun_cli_test(run_wrong_dtype EXIT 1 ARGS run ${SEQRUN_CLI_DATA}/linear.onnx
                -i x=${SEQRUN_CLI_DATA}/linear_x_f64.npy STDERR "input 'x': expected dtype f32, got f64"
                ONE_ERROR_LINE)
seqrun_cli_test(run_wrong_shape EXIT 1 ARGS run ${SEQRUN_CLI_DATA}/linear.onnx
                -i x=${SEQRUN_CLI_DATA}/linear_x_2x5.npy STDERR "input 'x': expected shape f32\\[batch, 4\\]"
                ONE_ERROR_LINE)
seqrun_cli_test(run_unknown_option EXIT 2 ARGS run ${SEQRUN_CLI_DATA}/linear.onnx --bogus STDERR "--bogus"
                ONE_ERROR_LINE)
seqrun_cli_test(no_subcommand EXIT 2 ARGS --log-level info STDERR "subcommand" ONE_ERROR_LINE)

# ---- logging -------------------------------------------------------------------------------------------
seqrun_cli_test(log_level_debug EXIT 0 ARGS --log-level debug run ${SEQRUN_CLI_DATA}/linear.onnx
                -i x=${SEQRUN_CLI_DATA}/linear_x.npy STDOUT "^y: f32\\[2, 3\\]" STDERR "\\[debug\\]")
seqrun_cli_test(log_level_env_invalid EXIT 2 ARGS inspect ${SEQRUN_CLI_DATA}/linear.onnx STDERR "--log-level"
                ONE_ERROR_LINE)
set_tests_properties(cli_log_level_env_invalid PROPERTIES ENVIRONMENT "SEQRUN_LOG_LEVEL=bogus")

# ---- .seqrun files: the same model converted by seqrun-export --------------------------------------------
add_test(NAME cli_export_linear_seqrun
         COMMAND $<TARGET_FILE:seqrun-export> onnx ${SEQRUN_CLI_DATA}/linear.onnx -o ${SEQRUN_CLI_OUT}/linear.seqrun)
set_tests_properties(cli_export_linear_seqrun PROPERTIES FIXTURES_SETUP cli_linear_seqrun LABELS "cli")
seqrun_cli_test(inspect_seqrun EXIT 0 ARGS inspect ${SEQRUN_CLI_OUT}/linear.seqrun
                STDOUT "\\(seqrun\\)" "inputs:\n  x: f32\\[batch, 4\\]" "weights: 2 tensors, 60 bytes" "metadata:")
seqrun_cli_test(run_seqrun EXIT 0 ARGS run ${SEQRUN_CLI_OUT}/linear.seqrun -i x=${SEQRUN_CLI_DATA}/linear_x.npy
                STDOUT "^y: f32\\[2, 3\\] min=0.625 max=4.375 mean=2.47917\n$")
set_tests_properties(cli_inspect_seqrun cli_run_seqrun PROPERTIES FIXTURES_REQUIRED cli_linear_seqrun)
# A file with the magic but nothing valid after it: one error line naming the file.
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/cli_corrupt.seqrun "SEQR this is not a flatbuffer")
seqrun_cli_test(inspect_corrupt_seqrun EXIT 1 ARGS inspect ${CMAKE_CURRENT_BINARY_DIR}/cli_corrupt.seqrun
                STDERR "cli_corrupt.seqrun" ONE_ERROR_LINE)
# --dtype: f16/bf16 need the CUDA backend; an unknown dtype is a usage error.
seqrun_cli_test(run_dtype_needs_cuda EXIT 2 ARGS run ${SEQRUN_CLI_DATA}/linear.onnx --dtype bf16
                -i x=${SEQRUN_CLI_DATA}/linear_x.npy STDERR "--dtype bf16 needs --backend cuda" ONE_ERROR_LINE)
seqrun_cli_test(run_dtype_unknown EXIT 2 ARGS run ${SEQRUN_CLI_DATA}/linear.onnx --dtype f8
                -i x=${SEQRUN_CLI_DATA}/linear_x.npy STDERR "--dtype: f8 not in" ONE_ERROR_LINE)
