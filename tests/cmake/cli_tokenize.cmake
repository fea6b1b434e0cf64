# ctest entries for tokenizers on the command line: `seqrun-export onnx ... --tokenizer PATH` stores one in
# the model's metadata, `seqrun tokenize MODEL --text/--ids` uses it. Expected ids come from outside seqrun:
# tests/data/gpt2-bpe/reference-ids.json (gpt-3-encoder) and tests/data/spm/reference-ids.json
# (python3-sentencepiece). Reuses seqrun_cli_test and cli_linear_seqrun (a model without a tokenizer) from
# cli.cmake.
if(NOT COMMAND seqrun_cli_test)
  include(${CMAKE_CURRENT_LIST_DIR}/cli.cmake)
endif()

set(SEQRUN_TOKENIZE_OUT "${CMAKE_CURRENT_BINARY_DIR}/cli_tokenize_out")
set(SEQRUN_TOKENIZE_DATA "${PROJECT_SOURCE_DIR}/tests/data")
file(MAKE_DIRECTORY ${SEQRUN_TOKENIZE_OUT})

# ---- GPT-2 BPE ----------------------------------------------------------------------------------------
add_test(NAME cli_tokenize_export_gpt2
         COMMAND $<TARGET_FILE:seqrun-export> onnx ${SEQRUN_CLI_DATA}/linear.onnx -o ${SEQRUN_TOKENIZE_OUT}/gpt2.seqrun
                 --tokenizer ${SEQRUN_TOKENIZE_DATA}/gpt2-bpe)
set_tests_properties(cli_tokenize_export_gpt2 PROPERTIES FIXTURES_SETUP cli_tokenize_gpt2 LABELS "cli")

seqrun_cli_test(tokenize_help EXIT 0 ARGS tokenize --help STDOUT "--text" "--ids" "--pieces")
seqrun_cli_test(tokenize_gpt2_text EXIT 0 ARGS tokenize ${SEQRUN_TOKENIZE_OUT}/gpt2.seqrun --text "Hello world"
                STDOUT "^15496,995\n$")
seqrun_cli_test(tokenize_gpt2_ids EXIT 0 ARGS tokenize ${SEQRUN_TOKENIZE_OUT}/gpt2.seqrun --ids "15496, 995"
                STDOUT "^Hello world\n$")
seqrun_cli_test(tokenize_gpt2_pieces EXIT 0 ARGS tokenize ${SEQRUN_TOKENIZE_OUT}/gpt2.seqrun --text "I've," --pieces
                STDOUT "^40,1053,11\n40\t\"I\"\n1053\t\"'ve\"\n11\t\",\"\n$")
seqrun_cli_test(tokenize_gpt2_bad_id EXIT 1 ARGS tokenize ${SEQRUN_TOKENIZE_OUT}/gpt2.seqrun --ids 15496,99999
                STDERR "token #1: id 99999 is out of range" ONE_ERROR_LINE)
seqrun_cli_test(tokenize_malformed_ids EXIT 2 ARGS tokenize ${SEQRUN_TOKENIZE_OUT}/gpt2.seqrun --ids 1,x
                STDERR "--ids: 'x' is not a token id" ONE_ERROR_LINE)
seqrun_cli_test(tokenize_needs_text_or_ids EXIT 2 ARGS tokenize ${SEQRUN_TOKENIZE_OUT}/gpt2.seqrun
                STDERR "exactly one of --text and --ids" ONE_ERROR_LINE)
set_tests_properties(cli_tokenize_gpt2_text cli_tokenize_gpt2_ids cli_tokenize_gpt2_pieces cli_tokenize_gpt2_bad_id
                     cli_tokenize_malformed_ids cli_tokenize_needs_text_or_ids
                     PROPERTIES FIXTURES_REQUIRED cli_tokenize_gpt2)

# ---- SentencePiece --------------------------------------------------------------------------------------
# SentencePiece needs RTLD_DEEPBIND in programs that load libprotobuf (runtime/tokenizer_spm.cpp), which
# sanitizer runtimes refuse: in sanitized builds only the unit test (no libprotobuf) checks SentencePiece.
if(NOT SEQRUN_SANITIZE)
  add_test(NAME cli_tokenize_export_spm
           COMMAND $<TARGET_FILE:seqrun-export> onnx ${SEQRUN_CLI_DATA}/linear.onnx -o
                   ${SEQRUN_TOKENIZE_OUT}/spm.seqrun --tokenizer ${SEQRUN_TOKENIZE_DATA}/spm/tiny.model)
  set_tests_properties(cli_tokenize_export_spm PROPERTIES FIXTURES_SETUP cli_tokenize_spm LABELS "cli")
  seqrun_cli_test(tokenize_spm_text EXIT 0 ARGS tokenize ${SEQRUN_TOKENIZE_OUT}/spm.seqrun --text "Hello world"
                  STDOUT "^491,352,511,919,777\n$")
  seqrun_cli_test(tokenize_spm_ids EXIT 0 ARGS tokenize ${SEQRUN_TOKENIZE_OUT}/spm.seqrun --ids 491,352,511,919,777
                  STDOUT "^Hello world\n$")
  set_tests_properties(cli_tokenize_spm_text cli_tokenize_spm_ids PROPERTIES FIXTURES_REQUIRED cli_tokenize_spm)
endif()

# ---- errors -------------------------------------------------------------------------------------------
seqrun_cli_test(tokenize_no_tokenizer EXIT 1 ARGS tokenize ${SEQRUN_CLI_OUT}/linear.seqrun --text hi
                STDERR "has no tokenizer" "--tokenizer" ONE_ERROR_LINE)
set_tests_properties(cli_tokenize_no_tokenizer PROPERTIES FIXTURES_REQUIRED cli_linear_seqrun)

# seqrun-export refuses a tokenizer it cannot read, naming the option and the path.
add_test(NAME cli_tokenize_export_bad_tokenizer
         COMMAND ${CMAKE_COMMAND}
                 "-DCOMMAND=$<TARGET_FILE:seqrun-export>|onnx|${SEQRUN_CLI_DATA}/linear.onnx|-o|${SEQRUN_TOKENIZE_OUT}/bad.seqrun|--tokenizer|${SEQRUN_TOKENIZE_OUT}/no-such-tokenizer.json"
                 "-DEXPECT_EXIT=1" "-DEXPECT_STDERR=^seqrun-export: error: --tokenizer: .*no-such-tokenizer.json"
                 -P ${SEQRUN_CLI_CHECKER})
set_tests_properties(cli_tokenize_export_bad_tokenizer PROPERTIES LABELS "cli" TIMEOUT 60)
