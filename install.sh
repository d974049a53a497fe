#!/usr/bin/env bash
# bash install.sh        .venv: everything (scan, training, compression, server, cluster, tests; CPU or CUDA)
# bash install.sh scan   .venv-scan: the scan alone (ONNX Runtime, no PyTorch, no OpenCV; a few hundred MB)
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ "${1:-}" = "scan" ]; then
  [ -x .venv-scan/bin/python ] || "$PY" -m venv .venv-scan
  .venv-scan/bin/pip install -q .
  .venv-scan/bin/python -c "import dfdetect; print('dfdetect', dfdetect.__version__, 'installed (scan only)')"
  exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q -e ".[all,test]"
# facenet-pytorch 2.6.0 declares torch<2.3 but works with this torch: install it without its pins.
.venv/bin/pip install -q --no-deps facenet-pytorch==2.6.0
.venv/bin/python -c "import dfdetect, facenet_pytorch, timm, cv2, av; print('dfdetect', dfdetect.__version__, 'installed')"
