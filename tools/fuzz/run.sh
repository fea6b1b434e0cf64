#!/usr/bin/env bash
# Fuzzes the model loader: configures a separate clang build in build-fuzz/ (libFuzzer + ASan + UBSan),
# builds only the fuzz target and the seed-corpus writer, writes the seeds (valid .seqrun files) and runs
# the fuzzer for a bounded time. Exits non-zero when the fuzzer finds a crash, leak or timeout; the
# reproducer is left in build-fuzz/fuzz/artifacts/ (replay: build-fuzz/tools/fuzz/fuzz_load_model FILE).
#
# Usage: tools/fuzz/run.sh [SECONDS] [extra libFuzzer flags...]
# Environment: SEQRUN_FUZZ_SECONDS (fuzzing time when SECONDS is not given, default 60),
#   SEQRUN_FUZZ_BUILD_DIR (default build-fuzz), SEQRUN_FUZZ_JOBS (build parallelism, default 2).
# The build uses -Werror like CI, so a warning only clang reports fails it too.
# On shared machines run it through the build lock: flock /tmp/seqrun-build.lock tools/fuzz/run.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${SEQRUN_FUZZ_BUILD_DIR:-$root/build-fuzz}"
jobs="${SEQRUN_FUZZ_JOBS:-2}"
seconds="${1:-${SEQRUN_FUZZ_SECONDS:-60}}"
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 [SECONDS] [libFuzzer flags...]" >&2
  exit 2
fi

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" -DCMAKE_C_FLAGS_DEBUG="-O1 -g" \
  -DSEQRUN_FUZZ=ON -DSEQRUN_BUILD_TESTS=OFF -DSEQRUN_CUDA=OFF -DSEQRUN_SANITIZE=address,undefined \
  -DSEQRUN_WERROR=ON >/dev/null
cmake --build "$build" -j "$jobs" --target fuzz_load_model fuzz_seed_corpus

work="$build/fuzz"
rm -rf "$work/seeds"
mkdir -p "$work/seeds" "$work/corpus" "$work/artifacts"
"$build/tools/fuzz/fuzz_seed_corpus" "$work/seeds" "$work/seqrun.dict"

export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
# New inputs go to corpus/ (kept between runs); seeds/ is read only. -timeout: one input may take 10 s.
"$build/tools/fuzz/fuzz_load_model" "$work/corpus" "$work/seeds" \
  -dict="$work/seqrun.dict" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
  -artifact_prefix="$work/artifacts/" -print_final_stats=1 "$@"
echo "fuzz: no crash in ${seconds} s"
