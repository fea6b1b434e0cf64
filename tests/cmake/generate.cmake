# ctest entries for `seqrun generate` on the bundled example model (models/tiny-rwkv-5v2-730K-FP32.bin), which
# a setup test converts with `seqrun-export rwkv` (storing its byte tokenizer). Single-run checks reuse
# seqrun_cli_test from cli.cmake (exit code, stdout/stderr regexes, one error line).
#
# Run as a script (`cmake -DCOMMAND=a|b|c [-DOTHER_COMMAND=...] -P generate.cmake`), this file is the
# determinism checker: it runs COMMAND twice and fails unless both runs succeed with identical stdout; with
# OTHER_COMMAND it also fails when that command's stdout equals COMMAND's (e.g. another seed).
if(CMAKE_SCRIPT_MODE_FILE)
  function(run_once list_text out_var)
    string(REPLACE "|" ";" command "${list_text}")
    execute_process(COMMAND ${command} RESULT_VARIABLE exit_code OUTPUT_VARIABLE out ERROR_VARIABLE err)
    message("command: ${command}\nexit code: ${exit_code}\n--- stdout ---\n${out}--- stderr ---\n${err}-----")
    if(NOT exit_code EQUAL 0)
      message(FATAL_ERROR "expected exit code 0, got ${exit_code}")
    endif()
    set(${out_var} "${out}" PARENT_SCOPE)
  endfunction()
  run_once("${COMMAND}" first)
  run_once("${COMMAND}" second)
  if(NOT first STREQUAL second)
    message(FATAL_ERROR "two runs of the same command printed different text")
  endif()
  if(OTHER_COMMAND)
    run_once("${OTHER_COMMAND}" other)
    if(other STREQUAL first)
      message(FATAL_ERROR "OTHER_COMMAND printed the same text as COMMAND")
    endif()
  endif()
  return()
endif()

if(NOT COMMAND seqrun_cli_test)
  include(${CMAKE_CURRENT_LIST_DIR}/cli.cmake)
endif()

set(SEQRUN_GENERATE_DIR "${CMAKE_CURRENT_BINARY_DIR}/generate_out")
set(SEQRUN_GENERATE_MODEL "${SEQRUN_GENERATE_DIR}/rwkv.seqrun")

file(MAKE_DIRECTORY ${SEQRUN_GENERATE_DIR})
add_test(NAME generate_export_model
         COMMAND $<TARGET_FILE:seqrun-export> rwkv ${PROJECT_SOURCE_DIR}/models/tiny-rwkv-5v2-730K-FP32.bin -o
                 ${SEQRUN_GENERATE_MODEL})
set_tests_properties(generate_export_model PROPERTIES FIXTURES_SETUP seqrun_generate_model LABELS "cli")

# seqrun_generate_test(NAME ...): seqrun_cli_test on the converted model (the fixture runs first).
function(seqrun_generate_test name)
  seqrun_cli_test(${name} ${ARGN})
  set_tests_properties(cli_${name} PROPERTIES FIXTURES_REQUIRED seqrun_generate_model)
endfunction()

# ---- help ----------------------------------------------------------------------------------------------
seqrun_cli_test(generate_help EXIT 0 ARGS generate --help
                STDOUT "--prompt" "--max-tokens" "--temperature" "--top-k" "--top-p" "--seed" "--stop"
                "--max-context" "--stats" "--seq-prefill-chunk" "Examples:")

# ---- greedy: the first token is the argmax of rwkv.cpp's own logits after '"in' -------------------------
# tests/data/rwkv-tiny/expected-logits-5v2-730K.bin (computed by rwkv.cpp) peaks at id 112 = 'p' (6.804, next
# 6.681), so greedy decoding continues '"in' with 'p' — with the prompt in one run or in runs of two tokens.
seqrun_generate_test(generate_greedy EXIT 0
                     ARGS generate ${SEQRUN_GENERATE_MODEL} --prompt "\"in" --temperature 0 --max-tokens 1
                     STDOUT "^\"inp\n$")
seqrun_generate_test(generate_greedy_chunked EXIT 0
                     ARGS generate ${SEQRUN_GENERATE_MODEL} --prompt "\"in" --temperature 0 --max-tokens 1
                          --seq-prefill-chunk 2 --no-echo
                     STDOUT "^p\n$")
# A stop string that the first token completes: nothing is generated, and --stats says why.
seqrun_generate_test(generate_stop EXIT 0
                     ARGS generate ${SEQRUN_GENERATE_MODEL} --prompt "\"in" --temperature 0 --max-tokens 20
                          --stop "zz" --stop "p" --stats
                     STDOUT "^\"in\n$" STDERR "generation: 1 tokens in [0-9.]+ ms, [0-9.]+ tokens/s \\(finished: stop")

# ---- sampling with a seed is deterministic; another seed gives other text ---------------------------------
add_test(NAME cli_generate_seed_deterministic
         COMMAND ${CMAKE_COMMAND}
                 "-DCOMMAND=$<TARGET_FILE:seqrun>|generate|${SEQRUN_GENERATE_MODEL}|--prompt|The |--max-tokens|60|--seed|1"
                 "-DOTHER_COMMAND=$<TARGET_FILE:seqrun>|generate|${SEQRUN_GENERATE_MODEL}|--prompt|The |--max-tokens|60|--seed|2"
                 -P ${CMAKE_CURRENT_LIST_FILE})
set_tests_properties(cli_generate_seed_deterministic
                     PROPERTIES FIXTURES_REQUIRED seqrun_generate_model LABELS "cli" TIMEOUT 60)
add_test(NAME cli_generate_topk_topp_deterministic
         COMMAND ${CMAKE_COMMAND}
                 "-DCOMMAND=$<TARGET_FILE:seqrun>|generate|${SEQRUN_GENERATE_MODEL}|--prompt|Once|--max-tokens|40|--seed|7|--temperature|0.8|--top-k|20|--top-p|0.9"
                 -P ${CMAKE_CURRENT_LIST_FILE})
set_tests_properties(cli_generate_topk_topp_deterministic
                     PROPERTIES FIXTURES_REQUIRED seqrun_generate_model LABELS "cli" TIMEOUT 60)

# ---- --stats prints both rates ---------------------------------------------------------------------------
seqrun_generate_test(generate_stats EXIT 0
                     ARGS generate ${SEQRUN_GENERATE_MODEL} --prompt "Hello" --max-tokens 16 --seed 3 --stats
                     STDOUT "^Hello"
                     STDERR "prompt processing: 5 tokens in [0-9.]+ ms, [0-9.]+ tokens/s\n"
                            "generation: 16 tokens in [0-9.]+ ms, [0-9.]+ tokens/s \\(finished: length; seed 3\\)")

# ---- errors ----------------------------------------------------------------------------------------------
seqrun_generate_test(generate_bad_temperature EXIT 2 ONE_ERROR_LINE
                     ARGS generate ${SEQRUN_GENERATE_MODEL} --prompt "x" --temperature -1
                     STDERR "--temperature -1: must be a number >= 0 \\(0 = greedy\\)")
seqrun_generate_test(generate_bad_top_p EXIT 2 ONE_ERROR_LINE
                     ARGS generate ${SEQRUN_GENERATE_MODEL} --prompt "x" --top-p 1.5
                     STDERR "--top-p 1.5: must be in \\(0, 1\\]")
seqrun_generate_test(generate_bad_max_tokens EXIT 2 ONE_ERROR_LINE
                     ARGS generate ${SEQRUN_GENERATE_MODEL} --prompt "x" --max-tokens many
                     STDERR "--max-tokens" "seqrun generate --help")
seqrun_generate_test(generate_no_prompt EXIT 2 ONE_ERROR_LINE
                     ARGS generate ${SEQRUN_GENERATE_MODEL}
                     STDERR "--prompt is required")
seqrun_generate_test(generate_max_context EXIT 1 ONE_ERROR_LINE
                     ARGS generate ${SEQRUN_GENERATE_MODEL} --prompt "abc" --max-tokens 10 --seed 1
                          --max-context 5
                     STDERR "rwkv.seqrun: sequence 0: context of 6 tokens exceeds --max-context 5")
seqrun_generate_test(generate_prompt_over_max_context EXIT 1 ONE_ERROR_LINE
                     ARGS generate ${SEQRUN_GENERATE_MODEL} --prompt "abcdef" --max-context 4
                     STDERR "sequence 0: context of 6 tokens exceeds --max-context 4")
# A model without a tokenizer says so.
seqrun_cli_test(generate_no_tokenizer EXIT 1 ONE_ERROR_LINE
                ARGS generate ${SEQRUN_CLI_DATA}/linear.onnx --prompt "x"
                STDERR "linear.onnx: the model has no tokenizer")
