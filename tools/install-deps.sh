#!/usr/bin/env bash
# Installs the Debian packages seqrun needs to build and test, and only those that are missing.
# Usage: tools/install-deps.sh [--with-fixture-tools]
#   --with-fixture-tools  also installs python3-torch/numpy/onnx and sentencepiece + python3-sentencepiece +
#                         dict-gcide (only needed to regenerate test fixtures)
set -euo pipefail

pkgs=(cmake g++ make ninja-build libflatbuffers-dev flatbuffers-compiler libdnnl-dev ocl-icd-opencl-dev
  libspdlog-dev libfmt-dev libcli11-dev catch2 libprotobuf-dev protobuf-compiler libonnx-dev
  nlohmann-json3-dev libonnx-testdata clang libclang-rt-14-dev ccache libsentencepiece-dev)
if [[ "${1:-}" == "--with-fixture-tools" ]]; then
  pkgs+=(python3-torch python3-numpy python3-onnx sentencepiece python3-sentencepiece dict-gcide)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
