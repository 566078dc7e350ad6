#!/usr/bin/env bash
# C++ probes of single kernels, built against the venv's libtorch (and, for lora-kernels, the
# addon's static core library, build/liblorafit_core.a from `npm run build:native`):
#   fp32-gemm-paths: at::mm (MKL for fp32) against libtorch's oneDNN entry point on lorafit's
#                    SmolLM2 shapes, the same row count each call; then a new row count each call.
#   lora-kernels:    native/small_gemm.cc's LoRA products at the 0.5B shape (512 tokens, r 16).
#   blocked-attention: native/layers/blocked_attention.cc against SDPA, time and error.
# Usage: bash bench/cpp-probes/run.sh [probe ...]   (2 intra-op threads; prints one line per shape)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
py="${LORAFIT_PYTHON:-/root/.cache/lorafit/venv/bin/python}"
torch="$("$py" -c 'import torch, os; print(os.path.dirname(torch.__file__))')"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
flags=(-O2 -std=c++20 -fopenmp -I"$root/native" -I"$torch/include" -I"$torch/include/torch/csrc/api/include")
# the OpenMP runtime libtorch loads (as CMakeLists.txt links the addon)
gomp=-fopenmp
[ -e "$torch/lib/libgomp.so.1" ] && gomp="$torch/lib/libgomp.so.1"
libs=(-L"$torch/lib" -ltorch_cpu -ltorch -lc10 "$gomp" -Wl,-rpath,"$torch/lib")
probes=("$@")
[ ${#probes[@]} -gt 0 ] || probes=(fp32-gemm-paths lora-kernels)
for p in "${probes[@]}"; do
  extra=()
  case "$p" in lora-kernels | blocked-attention) extra=("$root/build/liblorafit_core.a") ;; esac
  g++ "${flags[@]}" "$root/bench/cpp-probes/$p.cc" "${extra[@]}" "${libs[@]}" -o "$out/$p" 2> >(grep -v -e Wpsabi -e 'note:' >&2)
  echo "== $p"
  "$out/$p"
done
