#!/usr/bin/env bash
# Creates .venv in the repo root and installs everything Gnomon needs. Idempotent: a stamp skips work already done.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

# System packages (only when root and missing): GPAW's build needs libxc/BLAS/FFTW; browser tests need chromium.
bash scripts/apt_install.sh libxc-dev libopenblas-dev libfftw3-dev g++ chromium chromium-driver

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
PIP=".venv/bin/python -m pip"
STAMP=.venv/.gnomon-requirements.sha256
WANT=$(cat requirements.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat $STAMP 2>/dev/null)" != "$WANT" ]; then
  echo "==> installing Python packages into .venv (first time: a few minutes)"
  $PIP install -q --upgrade pip
  # torch first and alone, pinned: the resolver must never reach for a multi-GB CUDA build.
  $PIP install -q "torch==2.13.0" || $PIP install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
  $PIP install -q -r requirements.txt
  echo "$WANT" > $STAMP
fi

# Front-end files served as our own static files (no CDN at run time); fetched with npm, never committed.
if [ -x scripts/vendor_static.sh ]; then scripts/vendor_static.sh; fi
# GPAW (real DFT) is built against the system libraries when its recipe is present.
if [ -x scripts/install_gpaw.sh ]; then scripts/install_gpaw.sh; fi
echo "==> set-up done ($ROOT/.venv)"
