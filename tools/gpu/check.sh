#!/usr/bin/env bash
# The one-call GPU check: run on the GPU machine, from the repository root, with build-gpu/pack (made by
# tools/gpu/pack.sh on a build machine: seqrun-gpu-pack.tar.xz, unpacked here to a temporary folder)
# carried along:
#
#   bash tools/gpu/check.sh
#
# Steps, each under its own timeout inside a 450 s overall budget (the whole script stays under 8 minutes);
# a failing step does not stop the next:
#   info        nvidia-smi -L, driver/CUDA/torch versions, the pack's libraries resolved
#   unit        test_cuda_backend (every CUDA kernel family against naive loops)
#   optest      seqrun-optest --backend cuda (every op with a CUDA kernel against the CPU reference kernels)
#   onnx-node   seqrun-export check --backend cuda on tests/data/onnx-node (CPU fallback per node)
#   models      seqrun-export check --backend cuda on tests/data/models
#   torch-sdpa  tools/gpu/bench_attention.py (PyTorch scaled_dot_product_attention, bf16, B=4, H=16x64)
#   seqrun-attn seqrun-attention-bench on the same shapes (also spot-checks every result)
#   attn-v1     the same for the first tensor-core kernel (SEQRUN_CUDA_ATTENTION=mma-v1), 4k and 16k tokens
#   optest-perf seqrun-optest --perf --backend cuda --op Attention
#   torch-scan  tools/gpu/bench_scan.py (PyTorch's sequential reference selective scan, f32, one Mamba-130m
#               layer: B=1, D=1536, N=16, 2k..8k tokens)
#   seqrun-scan seqrun-scan-bench on the same shapes (also spot-checks every result)
#   decode-unit test_cuda_decode_kernels: Slice/Split/Concat, chunkwise LinearAttention, CachedAttention
#               (decode, multi-token, in place, bad position), the mamba-130m layer-0 fixture in f32 and bf16,
#               and SessionOptions::dtype bf16/f16 on the tiny GPT-2/Llama/Mamba checkpoints and RWKV models
#               (each against f32 references within the tolerances documented in the test)
#   ssm-blocks  seqrun-export check --backend cuda on tests/data/ssm (torch-exported Mamba blocks, -O1)
#   perf-cached seqrun-optest --perf --backend cuda --op CachedAttention (decode over a 4k cache: GB/s)
#   perf-linatt seqrun-optest --perf --backend cuda --op LinearAttention (chunkwise gated prefill: GFLOP/s)
#   torch-models tools/gpu/bench_models.py torch: GPT-2-small- and Mamba-130m-shaped checkpoints with random
#               weights, PyTorch's f32/bf16 logits, eager prefill (512 tokens) and decode (KV cache / state)
#   seqrun-models tools/gpu/bench_models.py seqrun: seqrun-export hf, `seqrun run --backend cuda --dtype
#               f32|bf16` against PyTorch's f32 logits, `seqrun bench` prefill, and decode through
#               StatefulSession (seqrun-gpu-decode-bench: the derived step graph, 32-token prompt, 64 steps)
# Full logs go to $OUT/check-all.log and the summary to $OUT/summary.txt ($OUT defaults to
# build-gpu/check-logs); the summary tables are printed last. Exit code 1 when a correctness step (unit,
# optest, onnx-node, models, rwkv, seqrun-attn, seqrun-scan, decode-unit, ssm-blocks) failed or timed out.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
ARCHIVE="$ROOT/build-gpu/pack/seqrun-gpu-pack.tar.xz"
OUT_DIR="${OUT:-$ROOT/build-gpu/check-logs}"
LOGS=$(mktemp -d /tmp/seqrun-check.XXXXXX)
mkdir -p "$OUT_DIR"
START=$(date +%s)
BUDGET_S=${SEQRUN_CHECK_BUDGET_S:-450}
FAILED=0
ROWS=()

# Unpack the binaries and their libraries (tar with xz, or Python's tarfile where xz is missing).
PACK="$LOGS/pack"
mkdir -p "$PACK"
if [[ ! -f "$ARCHIVE" ]]; then
  echo "check.sh: error: $ARCHIVE is missing: run tools/gpu/pack.sh on the build machine and carry build-gpu/pack" >&2
  exit 1
fi
if ! tar -xJf "$ARCHIVE" -C "$PACK" 2>/dev/null; then
  env -u LD_LIBRARY_PATH python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
    "$ARCHIVE" "$PACK" || { echo "check.sh: error: cannot unpack $ARCHIVE" >&2; exit 1; }
fi
BIN="$PACK/bin"
chmod +x "$BIN"/* 2>/dev/null

# Our binaries see the pack's libraries and the machine's CUDA; python (torch) does not see ours.
LIBS="$PACK/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib"
if ! env LD_LIBRARY_PATH="$LIBS" ldd "$BIN/test_cuda_backend" | grep -q "libcublasLt.so.* => /"; then
  # No CUDA in /usr/local/cuda: PyTorch's pip wheels carry the same libraries.
  extra=$(find /usr/local /opt /usr/lib -name 'libcublasLt.so.13*' 2>/dev/null | head -1)
  [[ -n "$extra" ]] && LIBS="$LIBS:$(dirname "$extra")"
  extra=$(find /usr/local /opt /usr/lib -name 'libcudart.so.13*' 2>/dev/null | head -1)
  [[ -n "$extra" ]] && LIBS="$LIBS:$(dirname "$extra")"
fi

# run_step NAME KIND(check|bench) CAP_S SUMMARY_REGEX COMMAND...: runs COMMAND under min(CAP_S, time left),
# logs it, records status, time and the last line matching SUMMARY_REGEX.
run_step() {
  local name=$1 kind=$2 cap=$3 pattern=$4
  shift 4
  local now left limit t0 rc status summary secs
  now=$(date +%s)
  left=$((START + BUDGET_S - now))
  limit=$((cap < left ? cap : left))
  local log="$LOGS/$name.log"
  if ((limit < 5)); then
    status="SKIPPED"
    summary="no time left in the ${BUDGET_S}s budget"
    rc=124
    echo "$summary" >"$log"
  else
    t0=$(date +%s.%N)
    echo "== [$name] $* (timeout ${limit}s)"
    timeout -k 5 "$limit" "$@" >"$log" 2>&1
    rc=$?
    secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    if ((rc == 0)); then
      status="ok"
    elif ((rc == 124 || rc == 137)); then
      status="TIMEOUT"
    else
      status="FAIL($rc)"
    fi
    summary=$(grep -E "$pattern" "$log" | tail -1 | cut -c1-110)
    [[ -n "$summary" ]] || summary=$(tail -1 "$log" | cut -c1-110)
  fi
  if [[ "$status" != "ok" && "$kind" == "check" ]]; then FAILED=1; fi
  if [[ "$status" != "ok" ]]; then
    echo "---- last lines of $name ----"
    grep -E "FAIL|error|Error|SKIP backend|failed" "$log" | head -20
    tail -8 "$log"
    echo "-----------------------------"
  fi
  ROWS+=("$(printf '%-12s %-6s %-9s %7ss  %s' "$name" "$kind" "$status" "${secs:-0}" "$summary")")
}

# shellcheck disable=SC2317  # invoked through bash -c
with_libs() { env LD_LIBRARY_PATH="$LIBS" "$@"; }

# shellcheck disable=SC2317
info() {
  nvidia-smi -L
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
  command -v nvcc >/dev/null && nvcc --version | tail -2
  cat "$PACK/MANIFEST" 2>/dev/null
  env -u LD_LIBRARY_PATH python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
  echo "LD_LIBRARY_PATH for seqrun: $LIBS"
  local missing=0
  for b in "$BIN"/*; do
    if with_libs ldd "$b" | grep "not found"; then missing=1; fi
  done
  with_libs ldd "$BIN/test_cuda_backend" | grep -E "cu(da|blas)|proto|fmt|spdlog|gomp"
  return "$missing"
}

# `timeout` runs programs, not shell functions: the info step runs in a child bash.
export LIBS BIN PACK
export -f info with_libs
L=(env "LD_LIBRARY_PATH=$LIBS")
if [[ -f "$PACK/lib/libsentencepiece.so.0" && -f "$PACK/lib/libprotobuf.so.32" ]]; then
  # Debian's libsentencepiece exports its own copy of protobuf: loaded before libprotobuf it breaks the ONNX
  # importer's static initialization (a segfault before main). Loading libprotobuf first avoids that.
  L+=("LD_PRELOAD=$PACK/lib/libprotobuf.so.32")
  echo "note: preloading libprotobuf.so.32 (libsentencepiece/libprotobuf symbol clash)"
fi
run_step info check 30 "GPU 0|not found" bash -c info
run_step unit check 90 "test cases|passed|failed|SKIP" "${L[@]}" "$BIN/test_cuda_backend"
if grep -q "SKIP: no CUDA device" "$LOGS/unit.log"; then
  # A skip is not a pass on the GPU machine.
  FAILED=1
  ROWS[-1]="${ROWS[-1]/ ok / FAIL}"
fi
run_step optest check 90 "^[0-9]+ passed|^cuda:" "${L[@]}" "$BIN/seqrun-optest" --backend cuda
run_step onnx-node check 75 "passed" "${L[@]}" "$BIN/seqrun-export" check --backend cuda \
  --exclude tests/conformance-exclude.txt tests/data/onnx-node
run_step models check 60 "passed" "${L[@]}" "$BIN/seqrun-export" check --backend cuda tests/data/models
run_step rwkv check 60 "test cases|passed|failed" "${L[@]}" env SEQRUN_TEST_DATA="$ROOT/tests/data" \
  "$BIN/test_rwkv" "rwkv: on the CUDA backend*"
run_step torch-sdpa bench 60 "^RESULT" env -u LD_LIBRARY_PATH PYTHONUNBUFFERED=1 python3 tools/gpu/bench_attention.py
run_step seqrun-attn check 90 "^RESULT|FAIL" "${L[@]}" "$BIN/seqrun-attention-bench"
run_step attn-v1 bench 40 "^RESULT|FAIL" "${L[@]}" "$BIN/seqrun-attention-bench" --kernel mma-v1 --tag seqrun-v1 \
  --seqs 4096,16384 --check-up-to 0 --repeat 5
run_step optest-perf bench 30 "timed" "${L[@]}" "$BIN/seqrun-optest" --perf --backend cuda --op Attention \
  --warmup 2 --repeat 5
run_step torch-scan bench 45 "^RESULT" env -u LD_LIBRARY_PATH PYTHONUNBUFFERED=1 python3 tools/gpu/bench_scan.py
run_step seqrun-scan check 45 "^RESULT|FAIL" "${L[@]}" "$BIN/seqrun-scan-bench"
run_step decode-unit check 120 "test cases|passed|failed|SKIP" "${L[@]}" env SEQRUN_TEST_DATA="$ROOT/tests/data" \
  "$BIN/test_cuda_decode_kernels"
if grep -q "SKIP: no CUDA device" "$LOGS/decode-unit.log"; then
  FAILED=1
  ROWS[-1]="${ROWS[-1]/ ok / FAIL}"
fi
run_step ssm-blocks check 45 "passed" "${L[@]}" "$BIN/seqrun-export" check --backend cuda tests/data/ssm
run_step perf-cached bench 30 "timed" "${L[@]}" "$BIN/seqrun-optest" --perf --backend cuda --op CachedAttention \
  --warmup 2 --repeat 5
run_step perf-linatt bench 30 "timed" "${L[@]}" "$BIN/seqrun-optest" --perf --backend cuda --op LinearAttention \
  --warmup 2 --repeat 5
MODELS_DIR="$LOGS/models"
run_step torch-models bench 120 "^RESULT|error" env -u LD_LIBRARY_PATH PYTHONUNBUFFERED=1 \
  python3 tools/gpu/bench_models.py torch "$MODELS_DIR"
PRELOAD=""
[[ -f "$PACK/lib/libsentencepiece.so.0" && -f "$PACK/lib/libprotobuf.so.32" ]] && PRELOAD="$PACK/lib/libprotobuf.so.32"
run_step seqrun-models bench 180 "^RESULT|failed" env -u LD_LIBRARY_PATH PYTHONUNBUFFERED=1 \
  python3 tools/gpu/bench_models.py seqrun "$MODELS_DIR" --bin "$BIN" --libs "$LIBS" --preload "$PRELOAD"

# Logs: one file (each step's log, at most its last 2 MiB), and the summary.
{
  for f in "$LOGS"/*.log; do
    echo "==================== $(basename "$f" .log) ===================="
    tail -c 2097152 "$f"
  done
} >"$OUT_DIR/check-all.log"

# Attention table: torch vs seqrun (and the first tensor-core kernel, v1) per (seq, causal).
table() {
  echo "attention bf16, B=4, H=16, D=64 (median ms; TFLOP/s counts causal as half; ratio = seqrun / torch time):"
  printf '%-7s %-6s %10s %10s %8s %9s %9s %9s  %s\n' seq causal torch_ms seqrun_ms ratio torch_TF seqrun_TF v1_ms \
    "kernel/check"
  awk '
    /^RESULT / {
      who = $2; k = $3 " " $4
      for (i = 3; i <= NF; ++i) { split($i, kv, "="); r[who, k, kv[1]] = kv[2] }
      if (who == "torch" || who == "seqrun") keys[k] = 1
    }
    END {
      for (k in keys) {
        split(k, kk, " "); split(kk[1], c, "="); split(kk[2], q, "=");
        tm = r["torch", k, "ms"]; sm = r["seqrun", k, "ms"]; vm = r["seqrun-v1", k, "ms"];
        ratio = (tm + 0 > 0 && sm + 0 > 0) ? sprintf("%.2fx", sm / tm) : "-";
        printf "%-7s %-6s %10s %10s %8s %9s %9s %9s  %s/%s\n", q[2], c[2], (tm == "" ? "-" : tm), (sm == "" ? "-" : sm),
               ratio, (r["torch", k, "tflops"] == "" ? "-" : r["torch", k, "tflops"]),
               (r["seqrun", k, "tflops"] == "" ? "-" : r["seqrun", k, "tflops"]), (vm == "" ? "-" : vm),
               (r["seqrun", k, "kernel"] == "" ? "-" : r["seqrun", k, "kernel"]),
               (r["seqrun", k, "check"] == "" ? "-" : r["seqrun", k, "check"])
      }
    }' "$LOGS/torch-sdpa.log" "$LOGS/seqrun-attn.log" "$LOGS/attn-v1.log" 2>/dev/null | sort -k1,1n -k2,2r
}

# Selective-scan table: PyTorch's sequential reference vs seqrun per sequence length.
scan_table() {
  echo "selective scan f32, B=1, D=1536, N=16 (one Mamba-130m layer; median ms; speedup = torch / seqrun):"
  printf '%-7s %12s %10s %9s %9s  %s\n' seq torch_ref_ms seqrun_ms speedup seqrun_GBs "kernel/check"
  awk '
    /^RESULT torch-scan/  { for (i = 3; i <= NF; ++i) { split($i, kv, "="); t[$3, kv[1]] = kv[2] } keys[$3] = 1 }
    /^RESULT seqrun-scan/ { for (i = 3; i <= NF; ++i) { split($i, kv, "="); s[$3, kv[1]] = kv[2] } keys[$3] = 1 }
    END {
      for (k in keys) {
        split(k, q, "=");
        tm = t[k, "ms"]; sm = s[k, "ms"];
        speed = (tm + 0 > 0 && sm + 0 > 0) ? sprintf("%.0fx", tm / sm) : "-";
        printf "%-7s %12s %10s %9s %9s  %s/%s\n", q[2], (tm == "" ? "-" : tm), (sm == "" ? "-" : sm), speed,
               (s[k, "gbps"] == "" ? "-" : s[k, "gbps"]), (s[k, "kernel"] == "" ? "-" : s[k, "kernel"]),
               (s[k, "check"] == "" ? "-" : s[k, "check"])
      }
    }' "$LOGS/torch-scan.log" "$LOGS/seqrun-scan.log" 2>/dev/null | sort -k1,1n
}

# Whole-model table: PyTorch eager vs seqrun per (model, dtype), tokens/s and seqrun's logits error.
models_table() {
  echo "whole models, batch 1 (tokens/s; prefill 512 tokens; decode 64 tokens after 32, PyTorch with its KV cache /"
  echo "state, seqrun through StatefulSession; ratio = seqrun / torch; err = seqrun logits vs PyTorch f32):"
  printf '%-11s %-5s %12s %12s %7s %11s %11s %7s %9s  %s\n' model dtype torch_prefill seqrun_prefill ratio \
    torch_dec seqrun_dec ratio err check
  awk '
    /^RESULT (torch|seqrun)-model / {
      who = ($2 == "torch-model") ? "t" : "s"
      for (i = 3; i <= NF; ++i) { split($i, kv, "="); v[who, $3, $4, kv[1]] = kv[2] }
      keys[$3 " " $4] = 1
    }
    function ratio(a, b) { return (a + 0 > 0 && b + 0 > 0) ? sprintf("%.2fx", b / a) : "-" }
    function val(x) { return x == "" ? "-" : x }
    END {
      for (k in keys) {
        split(k, kk, " ");
        tp = v["t", kk[1], kk[2], "prefill_tok_s"]; sp = v["s", kk[1], kk[2], "prefill_tok_s"];
        td = v["t", kk[1], kk[2], "decode_tok_s"]; sd = v["s", kk[1], kk[2], "decode_tok_s"];
        split(kk[1], m, "="); split(kk[2], d, "=");
        printf "%-11s %-5s %12s %12s %7s %11s %11s %7s %9s  %s\n", m[2], d[2], val(tp), val(sp), ratio(tp, sp),
               val(td), val(sd), ratio(td, sd), val(v["s", kk[1], kk[2], "error"]), val(v["s", kk[1], kk[2], "check"])
      }
    }' "$LOGS/torch-models.log" "$LOGS/seqrun-models.log" 2>/dev/null | sort
}

{
  echo
  echo "==================== seqrun GPU check: $(nvidia-smi -L 2>/dev/null | head -1) ===================="
  table
  echo
  scan_table
  echo
  models_table
  echo
  printf '%-12s %-6s %-9s %8s  %s\n' step kind status time summary
  for r in "${ROWS[@]}"; do echo "$r"; done
  echo "total $(($(date +%s) - START))s; logs: $OUT_DIR/check-all.log"
  if ((FAILED)); then echo "RESULT: FAILED (a correctness step failed)"; else echo "RESULT: all correctness steps passed"; fi
} | tee "$OUT_DIR/summary.txt"
rm -rf "$LOGS"
exit $FAILED
