#!/usr/bin/env bash
# Build (and optionally run) the native quantization test against the venv's libtorch.
#   test/native/build.sh          # build -> build/native-test/quant_test
#   test/native/build.sh run      # build and run (exit status = test status)
#   BNB_FILE=/tmp/bnb_nf4.safetensors test/native/build.sh run   # also compare with bitsandbytes
#     (written by test/interop/bnb_nf4_check.py)
# libtorch 2.15 headers require C++20 (ATen.h: "#error C++20 or later ... is required").
# TORCH_DIR overrides the libtorch location. Links libc10 + libtorch_cpu only (no CUDA toolkit).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TORCH_DIR="${TORCH_DIR:-$(cd "$ROOT" && node -e "import('./scripts/find-torch.mjs').then(m => { const t = m.findTorch(); if (!t || !t.root) process.exit(1); console.log(t.root); })")}"
OUT="${OUT_DIR:-$ROOT/build/native-test}"
CXX="${CXX:-g++}"
mkdir -p "$OUT"
"$CXX" -std=c++20 -O2 -D_GLIBCXX_USE_CXX11_ABI=1 -fopenmp \
  -I"$TORCH_DIR/include" -I"$TORCH_DIR/include/torch/csrc/api/include" \
  "$ROOT/native/quant.cc" "$ROOT/test/native/quant_test.cc" \
  -L"$TORCH_DIR/lib" -Wl,-rpath,"$TORCH_DIR/lib" -Wl,--no-as-needed -lc10 -ltorch_cpu \
  -o "$OUT/quant_test"
echo "built $OUT/quant_test"
if [[ "${1:-}" == "run" ]]; then
  "$OUT/quant_test" "${FIXTURE:-$ROOT/test/fixtures/hf/nf4/nf4_reference.safetensors}" ${BNB_FILE:-}
fi
