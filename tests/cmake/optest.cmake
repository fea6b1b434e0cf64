# The op-test table (tools/optest) as ctest entries: every case on the CPU backends against the reference
# kernels, no registered op without a case, and a smoke run of --perf.
add_test(NAME optest_cpu COMMAND $<TARGET_FILE:seqrun-optest> --backend all --threads 2)
add_test(NAME optest_no_missing_ops COMMAND $<TARGET_FILE:seqrun-optest> --list-missing)
add_test(NAME optest_perf_smoke COMMAND $<TARGET_FILE:seqrun-optest> --perf --op Relu --warmup 1 --repeat 2)
set_tests_properties(optest_cpu optest_no_missing_ops optest_perf_smoke PROPERTIES LABELS "optest" TIMEOUT 60)
set_tests_properties(optest_perf_smoke PROPERTIES PASS_REGULAR_EXPRESSION "GB/s")
