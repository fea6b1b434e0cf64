# The op-test table (tools/optest) as ctest entries: every case on the CPU backends against the reference
# kernels, no registered op without a case, a smoke run of --perf, and in CUDA builds the same table on the
# GPU (skipped, exit code 3, where no GPU is usable).
add_test(NAME optest_cpu COMMAND $<TARGET_FILE:seqrun-optest> --backend cpu,cpu-reference --threads 2)
add_test(NAME optest_no_missing_ops COMMAND $<TARGET_FILE:seqrun-optest> --list-missing)
add_test(NAME optest_perf_smoke COMMAND $<TARGET_FILE:seqrun-optest> --perf --op Relu --warmup 1 --repeat 2)
set_tests_properties(optest_cpu optest_no_missing_ops optest_perf_smoke PROPERTIES LABELS "optest" TIMEOUT 60)
set_tests_properties(optest_perf_smoke PROPERTIES PASS_REGULAR_EXPRESSION "GB/s")
if(SEQRUN_HAVE_CUDA)
  add_test(NAME optest_cuda COMMAND $<TARGET_FILE:seqrun-optest> --backend cuda)
  set_tests_properties(optest_cuda PROPERTIES LABELS "optest;cuda" TIMEOUT 120 SKIP_RETURN_CODE 3)
endif()
