#!/usr/bin/env bash
# Build (and optionally run) the native quantization test. It is the CMake target quant_test of
# the C++ test build (scripts/native-tests.mjs, build/native-tests; `npm test` runs all of them
# with ctest).
#   test/native/build.sh          # build -> build/native-tests/quant_test
#   test/native/build.sh run      # build and run (exit status = test status)
#   BNB_FILE=/tmp/bnb_nf4.safetensors test/native/build.sh run   # also compare with bitsandbytes
#     (written by test/interop/bnb_nf4_check.py; test/native/quant.test.ts does both in npm test)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
node "$ROOT/scripts/native-tests.mjs" --build quant_test
echo "built $ROOT/build/native-tests/quant_test"
if [[ "${1:-}" == "run" ]]; then
  "$ROOT/build/native-tests/quant_test" "${FIXTURE:-$ROOT/test/fixtures/hf/nf4/nf4_reference.safetensors}" ${BNB_FILE:-}
fi
