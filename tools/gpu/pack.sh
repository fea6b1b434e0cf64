#!/usr/bin/env bash
# Builds the GPU pack HERE (a machine with nvcc, no GPU needed) for tools/gpu/check.sh to run on the GPU
# machine, which lacks seqrun's Debian dependencies (protobuf, onnx, fmt, spdlog, CLI11...).
#
#   flock /tmp/seqrun-build.lock tools/gpu/pack.sh     # JOBS=2 by default
#
# 1. configures build-gpu/ (Release, -DSEQRUN_CUDA=ON, CMAKE_CUDA_ARCHITECTURES=90, -DSEQRUN_ONEDNN=OFF so the
#    CPU fallback needs no libdnnl), builds only seqrun, seqrun-export, seqrun-optest, test_cuda_backend,
#    test_cuda_decode_kernels, test_rwkv, seqrun-attention-bench, seqrun-scan-bench and seqrun-gpu-decode-bench;
# 2. copies them, stripped, to build-gpu/pack-staging/bin and the shared libraries they need that are not
#    part of the C runtime or of CUDA to build-gpu/pack-staging/lib (libcudart/libcublas* come from the GPU
#    machine's CUDA 13 in /usr/local/cuda/lib64; glibc, libstdc++ and libgcc_s from its system);
# 3. packs that into build-gpu/pack/seqrun-gpu-pack.tar.xz (the nine binaries share most of their code, so
#    xz -9 shrinks ~63 MiB to ~6 MiB: the pack travels with the working tree, 64 MiB in all) and prints its size
#    and the newest glibc / libstdc++ symbol versions the binaries need.
# Then run on the GPU machine, from the repository root, carrying build-gpu/pack:  tools/gpu/check.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=build-gpu
STAGE=$BUILD/pack-staging
PACK=$BUILD/pack
ARCHIVE=$PACK/seqrun-gpu-pack.tar.xz
JOBS=${JOBS:-2}
TARGETS=(seqrun seqrun-export seqrun-optest test_cuda_backend test_cuda_decode_kernels seqrun-attention-bench
  seqrun-scan-bench seqrun-gpu-decode-bench test_rwkv)
LIMIT_MIB=60

echo "== configure $BUILD"
mkdir -p "$BUILD"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSEQRUN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DSEQRUN_ONEDNN=OFF -DSEQRUN_WERROR=ON -DSEQRUN_BUILD_TESTS=ON >"$BUILD/configure.log" 2>&1 ||
  { cat "$BUILD/configure.log"; exit 1; }
grep -E "seqrun: CUDA backend" "$BUILD/configure.log" || true

echo "== build ${TARGETS[*]} (-j$JOBS)"
ninja -C "$BUILD" -j"$JOBS" "${TARGETS[@]}"

echo "== assemble $STAGE"
rm -rf "$STAGE" "$PACK"
mkdir -p "$STAGE/bin" "$STAGE/lib" "$PACK"
for t in "${TARGETS[@]}"; do
  src=$(find "$BUILD" -type f -name "$t" -perm -u+x -not -path "$STAGE/*" | head -1)
  [[ -n "$src" ]] || { echo "pack.sh: error: built target $t not found under $BUILD" >&2; exit 1; }
  cp "$src" "$STAGE/bin/$t"
  strip --strip-unneeded "$STAGE/bin/$t"
done

# Shared libraries: everything ldd resolves except the C runtime, the compiler runtime and CUDA's own.
system_lib() {
  case "$1" in
    linux-vdso.so* | ld-linux*.so* | libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* | \
      libstdc++.so* | libgcc_s.so* | libcuda.so* | libcudart.so* | libcublas.so* | libcublasLt.so*)
      return 0 ;;
  esac
  return 1
}
missing=0
for bin in "$STAGE"/bin/*; do
  while read -r name arrow path _; do
    [[ "$arrow" == "=>" ]] || continue
    if [[ "$path" == "not" ]]; then
      if ! system_lib "$name"; then echo "pack.sh: error: $bin needs $name, not found here" >&2; missing=1; fi
      continue
    fi
    system_lib "$name" && continue
    [[ -e "$STAGE/lib/$name" ]] || cp -L "$path" "$STAGE/lib/$name"
  done < <(ldd "$bin")
done
[[ $missing == 0 ]] || exit 1

# Smoke test with the packed libraries: every binary should at least start (no GPU needed for --help). A
# failure is reported loudly but still packed: the other binaries' GPU checks stay useful.
smoke_failures=()
for bin in "$STAGE"/bin/*; do
  rc=0
  LD_LIBRARY_PATH="$STAGE/lib" "$bin" --help >/dev/null 2>&1 || rc=$?
  if ((rc != 0)); then
    echo "pack.sh: WARNING: $(basename "$bin") --help exits $rc with the packed libraries (139 = segfault)" >&2
    smoke_failures+=("$(basename "$bin")")
  fi
done

{
  echo "seqrun GPU pack"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m), $(nvcc --version | tail -1)"
  echo "flags: Release, SEQRUN_CUDA=ON, CMAKE_CUDA_ARCHITECTURES=90, SEQRUN_ONEDNN=OFF"
  echo "needs from the GPU machine: libcudart.so.13, libcublasLt.so.13 (/usr/local/cuda/lib64), glibc, libstdc++"
} >"$STAGE/MANIFEST"

echo "== contents"
(cd "$STAGE" && du -b bin/* lib/* | sort -k2 | awk '{printf "%9.1f KiB  %s\n", $1 / 1024, $2}')
glibc=$(objdump -T "$STAGE"/bin/* "$STAGE"/lib/* 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV | tail -1)
glibcxx=$(objdump -T "$STAGE"/bin/* "$STAGE"/lib/* 2>/dev/null | grep -o 'GLIBCXX_[0-9][0-9.]*' | sort -uV | tail -1)
echo "newest symbol versions needed: $glibc, $glibcxx" | tee -a "$STAGE/MANIFEST"
staged=$(du -sb "$STAGE" | cut -f1)
echo "unpacked: $(awk -v b="$staged" 'BEGIN { printf "%.1f", b / 1048576 }') MiB" | tee -a "$STAGE/MANIFEST"
# xz -9: its 64 MiB dictionary spans several binaries, so their identical CUDA fatbins (~3.5 MiB each) are
# stored once (the default -6 window of 8 MiB is shorter than one binary); one thread keeps one stream.
XZ_OPT="-9 -T1" tar -cJf "$ARCHIVE" -C "$STAGE" MANIFEST bin lib
cp "$STAGE/MANIFEST" "$PACK/MANIFEST"
bytes=$(du -sb "$PACK" | cut -f1)
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
echo "pack size: $mib MiB ($bytes bytes) in $PACK" | tee -a "$PACK/MANIFEST"
if ((bytes > LIMIT_MIB * 1048576)); then
  echo "pack.sh: error: the pack is over $LIMIT_MIB MiB" >&2
  exit 1
fi
if ((${#smoke_failures[@]} > 0)); then
  echo "smoke test FAILED for: ${smoke_failures[*]} (their check.sh steps will fail)" | tee -a "$PACK/MANIFEST"
fi
echo "device run: carry [\"$PACK\"], command: bash tools/gpu/check.sh"
