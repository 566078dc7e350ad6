#!/usr/bin/env bash
# Creates (once) the Python environment lorafit uses on a fresh machine:
#   - PyPI's torch wheel, whose libtorch the native addon builds and links against;
#   - the reference stack for interop tests (transformers, peft, safetensors, bitsandbytes, gguf).
# Idempotent and cached under $LORAFIT_CACHE (default ~/.cache/lorafit). Prints the python path last.
set -euo pipefail
cache="${LORAFIT_CACHE:-$HOME/.cache/lorafit}"
venv="$cache/venv"
stamp="$venv/.lorafit-requirements"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
req="$here/python-requirements.txt"

if [ ! -x "$venv/bin/python" ]; then
  command -v python3 >/dev/null || { echo "python3 is required (apt-get install -y python3 python3-venv)" >&2; exit 1; }
  python3 -m venv "$venv" >&2 || { echo "python3 -m venv failed: apt-get install -y python3-venv" >&2; exit 1; }
fi
if ! cmp -s "$req" "$stamp"; then
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
  cp "$req" "$stamp"
fi
echo "$venv/bin/python"
