#!/usr/bin/env bash
# One-time, idempotent set-up of everything hvd_qsparse needs on a fresh Debian machine:
# Debian's OpenMPI, a virtual environment in the repo (.venv), the local PyTorch 2.13 CPU
# wheel, Horovod 0.28.1 built from its sdist (wheel cached outside the repo so later clones
# and runs never rebuild it), mpi4py, and the project itself (editable).
#
# Usage: bash launch/setup.sh        (prints the venv's python path on its last line)
# Env:   HVD_QSPARSE_CACHE  where the built Horovod wheel is kept (default ~/.cache/hvd_qsparse)
#        HVD_QSPARSE_VENV   the virtual environment (default <repo>/.venv)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${HVD_QSPARSE_VENV:-$ROOT/.venv}"
CACHE="${HVD_QSPARSE_CACHE:-$HOME/.cache/hvd_qsparse}"
TORCH_VERSION=2.13.0
HOROVOD_VERSION=0.28.1
WHEEL_DIR="$CACHE/horovod-$HOROVOD_VERSION-torch$TORCH_VERSION"
PY="$VENV/bin/python"

log() { echo "[setup] $*" >&2; }

apt_install() {
  local missing=()
  command -v mpirun >/dev/null || missing+=(openmpi-bin)
  command -v mpicxx >/dev/null || missing+=(libopenmpi-dev)
  command -v cmake >/dev/null || missing+=(cmake)
  command -v ip >/dev/null || missing+=(iproute2)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

DEPS="numpy mpi4py>=4 scikit-learn mlxtend tqdm matplotlib tensorboard pytest pytest-timeout cloudpickle psutil pyyaml packaging cffi"

make_venv() {
  [ -x "$PY" ] || { log "creating $VENV"; python3 -m venv "$VENV"; }
  [ "$(cat "$VENV/.hvd_qsparse_deps" 2>/dev/null)" = "$TORCH_VERSION $DEPS" ] && return 0
  "$PY" -m pip install -q --upgrade "pip>=23" "setuptools>=61" wheel
  "$PY" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null \
    || "$PY" -m pip install -q "torch==$TORCH_VERSION"
  # shellcheck disable=SC2086
  "$PY" -m pip install -q $DEPS
  echo "$TORCH_VERSION $DEPS" > "$VENV/.hvd_qsparse_deps"
}

build_horovod_wheel() {
  ls "$WHEEL_DIR"/horovod-*.whl >/dev/null 2>&1 && return 0
  log "building Horovod $HOROVOD_VERSION against torch $TORCH_VERSION (once, ~3 min)"
  local tmp; tmp="$(mktemp -d)"
  "$PY" -m pip download -q --no-deps --no-binary :all: -d "$tmp" "horovod==$HOROVOD_VERSION"
  tar -xzf "$tmp"/horovod-*.tar.gz -C "$tmp"
  local src="$tmp/horovod-$HOROVOD_VERSION"
  # PyTorch >= 2.1 headers need C++17; the sdist pins C++14.
  sed -i 's/CMAKE_CXX_STANDARD 14/CMAKE_CXX_STANDARD 17/; s/-std=c++14/-std=c++17/g' \
    "$src/CMakeLists.txt" "$src/horovod/torch/CMakeLists.txt"
  mkdir -p "$WHEEL_DIR"
  ( cd "$src" && CMAKE_POLICY_VERSION_MINIMUM=3.5 HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_MPI=1 \
      HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_MXNET=1 \
      MAKEFLAGS="-j$(nproc)" "$PY" -m pip wheel -q --no-build-isolation --no-deps -w "$tmp/dist" . )
  mv "$tmp"/dist/horovod-*.whl "$WHEEL_DIR"/
  rm -rf "$tmp"
}

install_horovod() {
  "$PY" -c "import horovod, horovod.torch, sys; sys.exit(horovod.__version__ != '$HOROVOD_VERSION')" 2>/dev/null \
    && return 0
  build_horovod_wheel
  "$PY" -m pip install -q --no-deps --force-reinstall "$WHEEL_DIR"/horovod-*.whl
}

install_project() {
  "$PY" -c "import hvd_qsparse" 2>/dev/null && [ -f "$VENV/.hvd_qsparse_editable" ] && return 0
  "$PY" -m pip install -q --no-build-isolation --no-deps -e "$ROOT"
  touch "$VENV/.hvd_qsparse_editable"
}

{ apt_install; make_venv; install_horovod; install_project; } >&2
echo "$PY"
