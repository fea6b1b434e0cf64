# Opt-in ctest entry for the loader fuzzer. tools/fuzz/run.sh makes a second, clang build of the IR
# library (build-fuzz/) and fuzzes for 60 s, so it is off by default: tools/test.sh runs it directly.
# Enable with -DSEQRUN_FUZZ_CTEST=ON.
option(SEQRUN_FUZZ_CTEST "Add a ctest entry that builds and runs the loader fuzzer (tools/fuzz/run.sh)" OFF)
if(SEQRUN_FUZZ_CTEST)
  add_test(NAME "fuzz: load_model_from_memory (60 s)" COMMAND ${PROJECT_SOURCE_DIR}/tools/fuzz/run.sh 60)
  set_tests_properties("fuzz: load_model_from_memory (60 s)" PROPERTIES TIMEOUT 3600 LABELS fuzz RUN_SERIAL TRUE)
endif()
