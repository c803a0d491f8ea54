#!/usr/bin/env bash
# Install PyTorch into the venv before everything else, so no other package pulls a CUDA build
# onto a CPU-only machine. Usage: scripts/install_torch.sh PIP
set -euo pipefail
PIP=${1:?usage: install_torch.sh PIP}
PY=$(dirname "$PIP")/python
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
if "$PY" -c "import torch" 2>/dev/null; then
  echo "torch $("$PY" -c 'import torch; print(torch.__version__)') already installed"
  exit 0
fi
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "CUDA GPU found: installing pip's default (CUDA) torch"
  "$PIP" install "torch>=2.6"
elif "$PIP" download -q --no-index --no-deps "torch==$TORCH_VERSION" -d "$(mktemp -d)" >/dev/null 2>&1; then
  echo "no CUDA GPU: installing the local CPU wheel torch==$TORCH_VERSION"
  "$PIP" install "torch==$TORCH_VERSION"
else
  echo "no CUDA GPU: installing the CPU build of torch==$TORCH_VERSION from PyTorch's CPU index"
  "$PIP" install "torch==$TORCH_VERSION" --index-url "${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}" \
    --extra-index-url "$("$PIP" config get global.index-url 2>/dev/null || echo https://pypi.org/simple)"
fi
