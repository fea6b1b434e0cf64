# Smoke tests for `seqrun bench` on the tiny models in tests/data/cli: it times, prints a median, writes the
# last run's outputs, and fails cleanly. (The side-by-side comparison with ONNX Runtime and PyTorch,
# tools/bench/compare.py, needs the peers installed by tools/bench/setup.sh and never runs under ctest.)
# Each test runs through the checker script of cli.cmake (exit code + stdout/stderr regexes).

set(SEQRUN_BENCH_CHECKER "${PROJECT_SOURCE_DIR}/tests/cmake/cli.cmake")
set(SEQRUN_BENCH_DATA "${PROJECT_SOURCE_DIR}/tests/data/cli")
set(SEQRUN_BENCH_OUT "${CMAKE_CURRENT_BINARY_DIR}/bench_out")

# seqrun_bench_test(NAME EXIT CODE ARGS a b ... [STDOUT re ...] [STDERR re ...] [ONE_ERROR_LINE] [CLEAN dir])
function(seqrun_bench_test name)
  cmake_parse_arguments(PARSE_ARGV 1 T "ONE_ERROR_LINE" "EXIT;CLEAN" "ARGS;STDOUT;STDERR")
  list(JOIN T_ARGS "|" command)
  list(JOIN T_STDOUT "@@" stdout_patterns)
  list(JOIN T_STDERR "@@" stderr_patterns)
  add_test(NAME bench_${name}
           COMMAND ${CMAKE_COMMAND} "-DCOMMAND=$<TARGET_FILE:seqrun>|bench|${command}" "-DEXPECT_EXIT=${T_EXIT}"
                   "-DEXPECT_STDOUT=${stdout_patterns}" "-DEXPECT_STDERR=${stderr_patterns}"
                   "-DONE_ERROR_LINE=${T_ONE_ERROR_LINE}" "-DCLEAN_DIR=${T_CLEAN}" -P ${SEQRUN_BENCH_CHECKER})
  set_tests_properties(bench_${name} PROPERTIES LABELS "cli;bench" TIMEOUT 60)
endfunction()

set(SEQRUN_BENCH_NUMBER "[0-9]+\\.[0-9]+")
seqrun_bench_test(help EXIT 0 ARGS --help STDOUT "--warmup" "--repeat" "--random-inputs" "--input-shape" "--json"
                  "--load-only" "Examples:")
seqrun_bench_test(linear EXIT 0 CLEAN ${SEQRUN_BENCH_OUT}/linear
                  ARGS ${SEQRUN_BENCH_DATA}/linear.onnx --input x=${SEQRUN_BENCH_DATA}/linear_x.npy --warmup 1
                  --repeat 2 --output-dir ${SEQRUN_BENCH_OUT}/linear
                  STDOUT "load: ${SEQRUN_BENCH_NUMBER} ms\n" "input x: f32\\[2, 4\\]\n"
                  "run x2 \\(warmup 1\\): min [0-9.]+ ms, median [0-9.]+ ms, mean [0-9.]+ ms, max [0-9.]+ ms\n"
                  "arena: [^\n]+\n" "peak RSS: ${SEQRUN_BENCH_NUMBER} MiB\n" "wrote [^\n]*y\\.npy\n")
set_tests_properties(bench_linear PROPERTIES FIXTURES_SETUP bench_linear_out)
# The benchmarked outputs are the model's outputs: the same bytes numpy computed.
add_test(NAME bench_linear_output_matches_numpy
         COMMAND ${CMAKE_COMMAND} -E compare_files ${SEQRUN_BENCH_OUT}/linear/y.npy
                 ${SEQRUN_BENCH_DATA}/linear_y_expected.npy)
set_tests_properties(bench_linear_output_matches_numpy PROPERTIES FIXTURES_REQUIRED bench_linear_out
                                                                  LABELS "cli;bench")

seqrun_bench_test(json_random_inputs EXIT 0
                  ARGS ${SEQRUN_BENCH_DATA}/two_outputs.onnx --random-inputs --input-shape a=3 --input-shape b=3
                  --warmup 1 --repeat 2 -O0 --json
                  STDOUT "^{\n" "\"passes\": \"none\"" "\"a\": \"f32\\[3\\]\"" "\"median_ms\": [0-9]"
                  "\"times_ms\": " "\"arena_bytes\": [0-9]" "\"peak_rss_mib\": [0-9]" "\n}\n$")
seqrun_bench_test(load_only EXIT 0 ARGS ${SEQRUN_BENCH_DATA}/linear.onnx --load-only --warmup 1 --repeat 2
                  STDOUT "load x2 \\(warmup 1\\): min ${SEQRUN_BENCH_NUMBER} ms, median ${SEQRUN_BENCH_NUMBER} ms")

# Errors: one line naming the culprit.
seqrun_bench_test(random_needs_shape EXIT 1 ARGS ${SEQRUN_BENCH_DATA}/linear.onnx --random-inputs
                  STDERR "input 'x': type f32\\[batch, 4\\] has dims that are not static" ONE_ERROR_LINE)
seqrun_bench_test(bad_input_shape EXIT 2 ARGS ${SEQRUN_BENCH_DATA}/linear.onnx --random-inputs
                  --input-shape x=2xfour STDERR "--input-shape 'x=2xfour'" ONE_ERROR_LINE)
seqrun_bench_test(unknown_input_shape EXIT 2 ARGS ${SEQRUN_BENCH_DATA}/linear.onnx --random-inputs
                  --input-shape z=2x4 STDERR "no input 'z'" ONE_ERROR_LINE)
seqrun_bench_test(missing_input EXIT 1 ARGS ${SEQRUN_BENCH_DATA}/linear.onnx --repeat 1
                  STDERR "missing input 'x'" ONE_ERROR_LINE)
seqrun_bench_test(zero_repeat EXIT 2 ARGS ${SEQRUN_BENCH_DATA}/linear.onnx --repeat 0 STDERR "--repeat"
                  ONE_ERROR_LINE)

# seqrun-bench-decode (tools/bench/decode): decodes the tiny Llama of tests/data/hf, exported at test time, at two
# contexts and prints the table and the prefill line. Timing values are not checked, only that it runs.
add_test(NAME bench_decode_export_llama
         COMMAND $<TARGET_FILE:seqrun-export> hf ${PROJECT_SOURCE_DIR}/tests/data/hf/llama_bf16_untied -o
                 ${CMAKE_CURRENT_BINARY_DIR}/bench_decode_llama_tiny.seqrun)
set_tests_properties(bench_decode_export_llama PROPERTIES FIXTURES_SETUP bench_decode_llama LABELS "bench")
add_test(NAME bench_decode_llama
         COMMAND ${CMAKE_COMMAND}
                 "-DCOMMAND=$<TARGET_FILE:seqrun-bench-decode>|${CMAKE_CURRENT_BINARY_DIR}/bench_decode_llama_tiny.seqrun|--contexts|8,16|--steps|2|--repeat|2|--warmup-steps|1|--prefill|8|--prefill-repeat|2|--threads|1"
                 "-DEXPECT_EXIT=0"
                 "-DEXPECT_STDOUT=stateful: yes@@\\| context \\| tokens/s \\| ms/token median \\|@@\n\\| 8 \\| ${SEQRUN_BENCH_NUMBER} \\|@@\n\\| 16 \\| ${SEQRUN_BENCH_NUMBER} \\|@@prefill 8 tokens: median ${SEQRUN_BENCH_NUMBER} ms"
                 -P ${SEQRUN_BENCH_CHECKER})
set_tests_properties(bench_decode_llama PROPERTIES FIXTURES_REQUIRED bench_decode_llama LABELS "bench" TIMEOUT 60)
