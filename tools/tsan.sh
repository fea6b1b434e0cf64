#!/usr/bin/env bash
# ThreadSanitizer check of the embedding API's thread safety: configures a separate build (build-tsan/,
# -DSEQRUN_SANITIZE=thread, RelWithDebInfo, no CUDA), builds test_thread_safety and test_c_api in it and runs
# them. test_thread_safety shares one model between 8 threads (8 x 100 runs, each thread its own session) on
# the oneDNN/AVX2 CPU backend and on the reference backend, through the C++ and the C API.
#
# OpenMP: libgomp is not TSan-instrumented, so its barriers look like races to TSan. The runs therefore use
# one OpenMP thread per calling thread (OMP_NUM_THREADS=1; the sessions also ask for threads = 1): the
# parallelism under test is the application's threads sharing a model, not OpenMP's team inside one kernel.
# oneDNN is not instrumented either: its accesses are not checked, but its locks are seen.
#
# Builds are heavy on this machine; run it under the shared build lock:
#   flock /tmp/seqrun-build.lock tools/tsan.sh
# Environment: SEQRUN_TSAN_BUILD_DIR (default build-tsan), SEQRUN_TSAN_JOBS (default 2).
# Exit status: 0 when both tests pass with no TSan report; TSan reports fail the run (halt_on_error).
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${SEQRUN_TSAN_BUILD_DIR:-build-tsan}
jobs=${SEQRUN_TSAN_JOBS:-2}

# Warnings are not errors here: the main build (-Werror) checks them, and -fsanitize=thread at -O2 makes GCC 12
# warn about its own AVX-512 intrinsic headers (maybe-uninitialized in _mm256_undefined_pd).
cmake -S . -B "$build_dir" -G Ninja -DSEQRUN_SANITIZE=thread -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEQRUN_CUDA=OFF \
  -DSEQRUN_WERROR=OFF
cmake --build "$build_dir" -j "$jobs" --target test_thread_safety test_c_api

export OMP_NUM_THREADS=1
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 history_size=7 ${TSAN_OPTIONS:-}"
status=0
for test in test_thread_safety test_c_api; do
  echo "== $test (ThreadSanitizer, OMP_NUM_THREADS=1)"
  "$build_dir/tests/$test" || status=$?
done
exit $status
