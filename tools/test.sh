#!/usr/bin/env bash
# The README's test command: installs missing Debian packages, builds seqrun (warnings are errors),
# runs the whole test suite with ctest, then fuzzes the model loader for a bounded time.
#   SEQRUN_BUILD_DIR   build folder (default: build)
#   SEQRUN_FUZZ_SECONDS  fuzzing time (default 60; 0 skips the fuzz run)
#   SEQRUN_SANITIZE    e.g. address,undefined: build and test with sanitizers instead
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh

build_dir=${SEQRUN_BUILD_DIR:-build}
jobs=$(nproc)
cmake_args=(-S . -B "$build_dir" -G Ninja -DSEQRUN_WERROR=ON)
if [[ -n "${SEQRUN_SANITIZE:-}" ]]; then
  cmake_args+=(-DSEQRUN_SANITIZE="$SEQRUN_SANITIZE" -DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi
cmake "${cmake_args[@]}"
cmake --build "$build_dir" -j "$jobs"

status=0
(cd "$build_dir" && ctest --output-on-failure -j "$jobs" --timeout 900) || status=$?

fuzz_seconds=${SEQRUN_FUZZ_SECONDS:-60}
if [[ $status -eq 0 && "$fuzz_seconds" != "0" && -x tools/fuzz/run.sh ]]; then
  SEQRUN_FUZZ_SECONDS=$fuzz_seconds tools/fuzz/run.sh || status=$?
fi
exit $status
