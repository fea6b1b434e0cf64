#!/usr/bin/env bash
# Installs what the side-by-side benchmark's peers need on this machine (idempotent; run by hand, never in CI):
#   - ONNX Runtime 1.30 for node: `npm install` in tools/bench/ort (ONNXRUNTIME_NODE_INSTALL=skip: the plain
#     install tries to download CUDA files and fails);
#   - OpenBLAS (OpenMP flavour) for Debian's PyTorch 1.13, whose matmul otherwise runs on the reference BLAS
#     (~3 GFLOP/s): install libopenblas0-openmp, remove libopenblas0-pthread (they conflict, and the pthread
#     flavour would fight OpenMP for the cores).
# It changes the system's libblas.so.3 alternative, which numpy also uses.
#
#   tools/bench/setup.sh            do it
#   tools/bench/setup.sh --dry-run  only say what it would do
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dry_run=0
case "${1:-}" in
  --dry-run) dry_run=1 ;;
  "") ;;
  *) echo "usage: $0 [--dry-run]" >&2; exit 2 ;;
esac

if [[ -n "${CI:-}" || -n "${CTEST_INTERACTIVE_DEBUG_MODE:-}" ]]; then
  echo "setup.sh: refusing to run under CI/ctest: it installs system packages" >&2
  exit 1
fi

run() {
  echo "+ $*"
  if [[ $dry_run -eq 0 ]]; then "$@"; fi
}

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# ---- ONNX Runtime (node) ----
command -v node >/dev/null || { echo "setup.sh: node is not installed (apt-get install nodejs npm)" >&2; exit 1; }
if [[ -f "$here/ort/node_modules/onnxruntime-node/package.json" ]]; then
  echo "onnxruntime-node: already installed in $here/ort/node_modules"
else
  run bash -c "cd '$here/ort' && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund"
fi

# ---- OpenBLAS for PyTorch ----
packages=()
if installed libopenblas0-openmp; then
  echo "libopenblas0-openmp: already installed"
else
  packages+=(libopenblas0-openmp)
fi
if installed libopenblas0-pthread; then
  packages+=(libopenblas0-pthread-)  # trailing '-': remove it in the same transaction
else
  echo "libopenblas0-pthread: not installed (good)"
fi
if [[ ${#packages[@]} -gt 0 ]]; then
  if ! run "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${packages[@]}"; then
    run "${sudo_cmd[@]}" apt-get update
    run "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${packages[@]}"
  fi
fi

# ---- check ----
if [[ $dry_run -eq 0 ]]; then
  echo "PyTorch matmul speed (f32 512^3, 2 threads):"
  /usr/bin/python3 - <<'EOF'
import time, torch
torch.set_num_threads(2)
a = torch.randn(512, 512)
b = torch.randn(512, 512)
for _ in range(3):
    a @ b
n = 20
start = time.perf_counter()
for _ in range(n):
    a @ b
gflops = 2 * 512**3 * n / (time.perf_counter() - start) / 1e9
print(f"  {gflops:.1f} GFLOP/s" + ("  (slow: is the reference BLAS still selected?)" if gflops < 10 else ""))
EOF
  node -e "console.log('onnxruntime-node', require('$here/ort/node_modules/onnxruntime-node').env.versions.common)"
fi
