#!/usr/bin/env bash
# Times loading a ~100 MB .seqrun file (the issue's goal: under 20 ms, warm page cache).
#
# Makes an ONNX model with MB megabytes of f32 weights in TENSORS tensors (make_big_model.py), converts it with
# seqrun-export, reads the file once so it is in the page cache, then runs `seqrun bench --load-only`: each
# load opens a fresh Session (mmap, verify the file, build the graph, run the -O pipeline) and the median of
# REPEAT loads is reported. Files go to build/bench/load (generated, not committed).
#
#   tools/bench/load_bench.sh [--mb 100] [--tensors 100] [--repeat 10] [-O0|-O1]
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mb=100
tensors=100
repeat=10
opt=-O1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --mb) mb="$2"; shift 2 ;;
    --tensors) tensors="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    -O0|-O1) opt="$1"; shift ;;
    *) echo "usage: $0 [--mb 100] [--tensors 100] [--repeat 10] [-O0|-O1]" >&2; exit 2 ;;
  esac
done

seqrun="$repo/build/tools/seqrun"
export_tool="$repo/build/tools/seqrun-export"
for tool in "$seqrun" "$export_tool"; do
  [[ -x "$tool" ]] || { echo "load_bench.sh: $tool not found: build it first" >&2; exit 1; }
done

out="$repo/build/bench/load"
mkdir -p "$out"
name="big_${mb}mb_${tensors}t"
if [[ ! -f "$out/$name.seqrun" ]]; then
  /usr/bin/python3 "$repo/tools/bench/make_big_model.py" "$out/$name.onnx" --mb "$mb" --tensors "$tensors"
  "$export_tool" onnx "$out/$name.onnx" -o "$out/$name.seqrun"
  rm -f "$out/$name.onnx"
fi
cat "$out/$name.seqrun" > /dev/null  # warm the page cache: this measures warm mmap loads
echo "file: $out/$name.seqrun ($(du -m "$out/$name.seqrun" | cut -f1) MiB)"
echo "command: $seqrun bench $out/$name.seqrun --load-only --warmup 2 --repeat $repeat $opt"
"$seqrun" bench "$out/$name.seqrun" --load-only --warmup 2 --repeat "$repeat" "$opt"
