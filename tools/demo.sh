#!/usr/bin/env bash
# The README's demo command: installs missing Debian packages, builds seqrun, converts the bundled example model
# (models/tiny-rwkv-5v2-730K-FP32.bin: a tiny RWKV v5.2 language model from rwkv.cpp's tests, MIT licence, see
# models/README.md) to a .seqrun file, and generates text from it with `seqrun generate`, which streams the
# tokens as they are produced and prints prompt-processing and generation speed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh

build_dir=${SEQRUN_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target seqrun seqrun-export

out_dir="$build_dir/demo"
mkdir -p "$out_dir"

echo "== 1. convert the bundled RWKV model (rwkv.cpp's file format) to seqrun's format"
echo "      (the graph carries its recurrent state explicitly; the byte-level tokenizer goes into the metadata)"
"$build_dir/tools/seqrun-export" rwkv models/tiny-rwkv-5v2-730K-FP32.bin -o "$out_dir/rwkv.seqrun"

echo
echo "== 2. generate 100 tokens: the prompt is processed in one run, then one token per step with the state"
echo "      carried between steps. This model has only 730K parameters and saw little training: it writes"
echo "      English-looking gibberish, and that is expected. The same --seed always gives the same text."
echo
"$build_dir/tools/seqrun" generate "$out_dir/rwkv.seqrun" --prompt "Once upon a time" --max-tokens 100 --seed 1 \
  --temperature 0.7 --top-p 0.9 --stats
