#!/usr/bin/env bash
# The README's demo command: installs missing Debian packages, builds seqrun, converts a bundled ONNX model
# (a small GPT-2-style decoder exported from PyTorch: tests/data/models/gpt2_opset17) to a .seqrun file,
# shows what is inside it, runs it on a bundled token sequence and checks the logits against PyTorch's.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh

build_dir=${SEQRUN_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target seqrun seqrun-export

model_dir=tests/data/models/gpt2_opset17
out_dir="$build_dir/demo"
mkdir -p "$out_dir"

echo "== 1. convert the ONNX model to seqrun's format"
"$build_dir/tools/seqrun-export" onnx "$model_dir/model.onnx" -o "$out_dir/gpt2.seqrun"

echo
echo "== 2. what is inside (inputs, outputs, ops after the -O1 passes, weights)"
"$build_dir/tools/seqrun" inspect "$out_dir/gpt2.seqrun" | sed -n '1,/^graph /p'

echo
echo "== 3. run it on 16 token ids"
"$build_dir/tools/seqrun" run "$out_dir/gpt2.seqrun" --input input_ids=tools/demo/gpt2_input_ids.npy \
  --output-dir "$out_dir"

echo
echo "== 4. compare the logits with PyTorch's (the ONNX test data saved by tests/reference/export_models.py)"
"$build_dir/tools/seqrun-export" check "$model_dir"
