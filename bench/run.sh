#!/usr/bin/env bash
# Runs every benchmark case for lorafit and for HF transformers + PEFT side by side (each lorafit
# case directly followed by the same HF case, so machine drift hits both alike) and appends the
# JSON lines to bench/out/results.jsonl (also printed).
#
#   bench/run.sh                  full: 24 layers, forward fp32+bf16, train bf16 b1/b4 + fp32 b1/b4, loss
#   QUICK=1 bench/run.sh          4-layer model, fewer runs (development)
#   KNOBS=1 bench/run.sh          also sweeps the allocator/OpenMP knobs for lorafit (see README)
#   VARIANTS="default tuned"      env variants run for both implementations (default: both)
#   ONLY="forward train loss"     sections to run (default: all three)
#   TRAIN_BF16_BATCHES=1,4 TRAIN_FP32_BATCHES=1,4 LOSS_DTYPES="bfloat16 float32"  (empty skips)
#
# Needs: npm install && npx tsc -p . (dist/bench/*.js), and the venv's python (LORAFIT_PYTHON).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${LORAFIT_PYTHON:-/root/.cache/lorafit/venv/bin/python}
OUT=${OUT:-bench/out/results.jsonl}
THREADS=${THREADS:-2}
LAYERS=${LAYERS:-24}
FWD_RUNS=${FWD_RUNS:-5}
TRAIN_RUNS=${TRAIN_RUNS:-3}
LOSS_RUNS=${LOSS_RUNS:-5}
TRAIN_BF16_BATCHES=${TRAIN_BF16_BATCHES-1,4}
TRAIN_FP32_BATCHES=${TRAIN_FP32_BATCHES-1,4}
LOSS_DTYPES=${LOSS_DTYPES-"bfloat16 float32"}
KNOB_LAYERS=${KNOB_LAYERS:-4}
if [[ -n "${QUICK:-}" ]]; then LAYERS=4 FWD_RUNS=3 TRAIN_RUNS=3 LOSS_RUNS=3; fi
VARIANTS=${VARIANTS-"default tuned"}
ONLY=${ONLY:-"forward train loss"}
has() { [[ " $ONLY " == *" $1 "* ]]; }
TUNED_MALLOC="glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"

mkdir -p bench/out
[[ -f dist/bench/forward.js ]] || npx tsc -p .
MODEL=$(node dist/bench/make-model.js --layers "$LAYERS")
MODEL1=$(node dist/bench/make-model.js --layers 1)

# env for a variant name
variant_env() {
  case "$1" in
    default) echo "" ;;
    tuned) echo "GLIBC_TUNABLES=$TUNED_MALLOC" ;;
    passive) echo "OMP_WAIT_POLICY=PASSIVE" ;;
    active) echo "OMP_WAIT_POLICY=ACTIVE" ;;
    tuned_passive) echo "GLIBC_TUNABLES=$TUNED_MALLOC OMP_WAIT_POLICY=PASSIVE" ;;
    tuned_active) echo "GLIBC_TUNABLES=$TUNED_MALLOC OMP_WAIT_POLICY=ACTIVE" ;;
    *) echo "unknown variant $1" >&2; exit 2 ;;
  esac
}

# run VARIANT CMD...: runs CMD with the variant's env, tags each JSON line with "variant", appends to $OUT
run() {
  local v=$1; shift
  # shellcheck disable=SC2046
  env $(variant_env "$v") "$@" | while IFS= read -r line; do
    [[ $line == \{* ]] || { echo "$line" >&2; continue; }
    line="{\"variant\":\"$v\",${line#\{}"
    echo "$line" | tee -a "$OUT"
  done
}

ours() { run "$1" node "dist/bench/$2.js" "${@:3}" --threads "$THREADS"; }
hf() { run "$1" "$PY" bench/hf-baseline.py "$2" "${@:3}" --threads "$THREADS"; }

for v in $VARIANTS; do
  has forward && for d in float32 bfloat16; do
    ours "$v" forward --model "$MODEL" --dtypes $d --seq 512 --batch 1 --runs "$FWD_RUNS"
    hf "$v" forward --model "$MODEL" --dtypes $d --seq 512 --batch 1 --runs "$FWD_RUNS"
  done
  has train && for d in bfloat16 float32; do
    batches=$TRAIN_BF16_BATCHES
    [[ $d == float32 ]] && batches=$TRAIN_FP32_BATCHES
    for b in ${batches//,/ }; do
      ours "$v" train-step --model "$MODEL" --dtypes $d --seq 512 --batches "$b" --runs "$TRAIN_RUNS"
      hf "$v" train_step --model "$MODEL" --dtypes $d --seq 512 --batches "$b" --runs "$TRAIN_RUNS"
    done
  done
  has loss && for d in $LOSS_DTYPES; do
    ours "$v" loss --model "$MODEL1" --dtypes $d --tokens 2048 --runs "$LOSS_RUNS"
    hf "$v" loss --model "$MODEL1" --dtypes $d --tokens 2048 --runs "$LOSS_RUNS"
  done
done

if [[ -n "${KNOBS:-}" ]]; then
  # lorafit only: which allocator / OpenMP wait settings help, seq 512 batch 1, on a KNOB_LAYERS model
  MODEL=$(node dist/bench/make-model.js --layers "$KNOB_LAYERS")
  for v in default tuned passive tuned_passive active; do
    for d in bfloat16 float32; do
      ours "$v" forward --model "$MODEL" --dtypes $d --seq 512 --batch 1 --runs "$FWD_RUNS"
      ours "$v" train-step --model "$MODEL" --dtypes $d --seq 512 --batches 1 --runs "$TRAIN_RUNS"
    done
  done
fi
