#!/usr/bin/env bash
# Creates .venv with dfdetect and everything it needs (CPU or CUDA, same wheels).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/pip install -q -e ".[test]"
# facenet-pytorch 2.6.0 declares torch<2.3 but works with this torch: install it without its pins.
.venv/bin/pip install -q --no-deps facenet-pytorch==2.6.0
.venv/bin/python -c "import dfdetect, facenet_pytorch, timm, cv2, av; print('dfdetect', dfdetect.__version__, 'installed')"
