#!/usr/bin/env bash
# Builds GPAW (real plane-wave DFT) into .venv against Debian's libxc, OpenBLAS and FFTW. Called by scripts/setup.sh.
# Idempotent: does nothing when .venv already has gpaw==$GPAW_VERSION built with libxc, BLAS and FFTW.
#
# Why a site config: GPAW 26 compiles as C++17 (compiler g++), an MPI compiler may be on the machine (mpi = False keeps
# the build serial), and without `libraries += ['blas']` the build silently goes without BLAS.
# PAW setups come from the PyPI package gpaw-data; Debian's gpaw-data (/usr/share/gpaw-setups) is the fallback.
set -euo pipefail
cd "$(dirname "$0")/.."
GPAW_VERSION=26.7.0
GPAW_DATA_VERSION=1.2.1
PY=.venv/bin/python
[ -x "$PY" ] || { echo "install_gpaw.sh: .venv missing; run scripts/setup.sh first" >&2; exit 1; }

gpaw_ok() {
  [ -x .venv/bin/gpaw ] && [ "$("$PY" -c 'import gpaw; print(gpaw.__version__)' 2>/dev/null)" = "$GPAW_VERSION" ] || return 1
  local info
  info=$(.venv/bin/gpaw info 2>&1) || return 1
  check_libs "$info" >/dev/null
}

# gpaw info lists libxc and FFTW; GPAW 26 has no BLAS line, so BLAS is checked on the extension's linked libraries.
check_libs() {
  local info=$1 so
  echo "$info" | grep -Ei '^libxc.* yes' || { echo "gpaw info: no libxc" >&2; return 1; }
  echo "$info" | grep -Ei '^FFTW +yes' || { echo "gpaw info: no FFTW" >&2; return 1; }
  so=$("$PY" -c 'import _gpaw; print(_gpaw.__file__)' 2>/dev/null) || return 1
  ldd "$so" | grep -Ei 'lib(open)?blas' || { echo "_gpaw is not linked against BLAS" >&2; return 1; }
}

if gpaw_ok; then
  echo "==> GPAW $GPAW_VERSION already in .venv"
  exit 0
fi

bash scripts/apt_install.sh libxc-dev libopenblas-dev libfftw3-dev g++

SITECONFIG=.venv/gpaw-siteconfig.py
cat > "$SITECONFIG" <<'EOF'
# Written by scripts/install_gpaw.sh: serial GPAW against Debian's libxc, OpenBLAS (as libblas) and FFTW3.
compiler = 'g++'
mpi = False
libraries = ['xc', 'blas', 'fftw3']
fftw = True
EOF

echo "==> building gpaw==$GPAW_VERSION into .venv (a few minutes)"
GPAW_CONFIG="$(pwd)/$SITECONFIG" "$PY" -m pip install -q --no-cache-dir "gpaw==$GPAW_VERSION"
"$PY" -m pip install -q "gpaw-data==$GPAW_DATA_VERSION" || echo "warning: gpaw-data from PyPI failed; falling back to /usr/share/gpaw-setups"

if ! check_libs "$(.venv/bin/gpaw info 2>&1)"; then
  echo "install_gpaw.sh: GPAW built without libxc/BLAS/FFTW; check the Debian packages and $SITECONFIG" >&2
  exit 1
fi
echo "==> GPAW $GPAW_VERSION ready"
