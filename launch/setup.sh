#!/usr/bin/env bash
# One-time, idempotent set-up of everything hvd_qsparse needs on a fresh Debian machine:
# Debian's OpenMPI, a virtual environment in the repo (.venv), the local PyTorch 2.13 CPU
# wheel, Horovod 0.28.1 built from its sdist (wheel cached outside the repo so later clones
# and runs never rebuild it), mpi4py, torchft 0.2.0 (the benchmark's torchft-diloco peer), and
# the project itself (editable).
#
# Usage: bash launch/setup.sh        (prints the venv's python path on its last line)
# Env:   HVD_QSPARSE_CACHE  where the built Horovod wheel is kept (default ~/.cache/hvd_qsparse)
#        HVD_QSPARSE_VENV   the virtual environment (default <repo>/.venv, <repo>/.venv-gpu for GPU)
#        HVD_QSPARSE_GPU=1  a GPU set-up instead: the CUDA build of torch 2.14.1 (about 5.5 GB),
#                           CuPy, and Horovod built with NCCL (HOROVOD_GPU_OPERATIONS=NCCL) against
#                           the CUDA toolkit found at HVD_QSPARSE_CUDA_HOME (default: the root of
#                           /usr/local/cuda); the build takes about 20 minutes on two cores, once.
#        HVD_QSPARSE_CUDA_CC  GPU architectures Horovod's kernels are built for (default 80,90)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GPU="${HVD_QSPARSE_GPU:-0}"
CACHE="${HVD_QSPARSE_CACHE:-$HOME/.cache/hvd_qsparse}"
HOROVOD_VERSION=0.28.1
if [ "$GPU" = 1 ]; then
  VENV="${HVD_QSPARSE_VENV:-$ROOT/.venv-gpu}"
  TORCH_VERSION=2.14.1
  WHEEL_DIR="$CACHE/horovod-$HOROVOD_VERSION-torch$TORCH_VERSION-nccl"
else
  VENV="${HVD_QSPARSE_VENV:-$ROOT/.venv}"
  TORCH_VERSION=2.13.0
  WHEEL_DIR="$CACHE/horovod-$HOROVOD_VERSION-torch$TORCH_VERSION"
fi
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

# CuPy (its CUDA 13 wheel needs numpy below 2.6) and NVRTC even without a GPU: the tests compile
# every kernel through NVRTC on each run (tests/kernels), which needs no device.
DEPS="numpy<2.6 mpi4py>=4 scikit-learn mlxtend tqdm matplotlib tensorboard pytest pytest-timeout cloudpickle psutil pyyaml packaging cffi torchft==0.2.0 cupy-cuda13x==14.* nvidia-cuda-nvrtc==13.*"

make_venv() {
  [ -x "$PY" ] || { log "creating $VENV"; python3 -m venv "$VENV"; }
  [ "$(cat "$VENV/.hvd_qsparse_deps" 2>/dev/null)" = "$TORCH_VERSION $DEPS" ] && return 0
  "$PY" -m pip install -q --upgrade "pip>=23" "setuptools>=61" wheel
  "$PY" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null \
    || "$PY" -m pip install -q "torch==$TORCH_VERSION"
  if [ "$GPU" = 1 ]; then
    "$PY" -c "import torch, sys; sys.exit(torch.version.cuda is None)" \
      || { log "torch $TORCH_VERSION here is not a CUDA build; HVD_QSPARSE_GPU=1 needs one"; exit 1; }
  fi
  # shellcheck disable=SC2086
  "$PY" -m pip install -q $DEPS
  echo "$TORCH_VERSION $DEPS" > "$VENV/.hvd_qsparse_deps"
}

build_horovod_wheel() {
  ls "$WHEEL_DIR"/horovod-*.whl >/dev/null 2>&1 && return 0
  log "building Horovod $HOROVOD_VERSION against torch $TORCH_VERSION (once: ~3 min, ~20 min with NCCL)"
  local tmp; tmp="$(mktemp -d)"
  "$PY" -m pip download -q --no-deps --no-binary :all: -d "$tmp" "horovod==$HOROVOD_VERSION"
  tar -xzf "$tmp"/horovod-*.tar.gz -C "$tmp"
  local src="$tmp/horovod-$HOROVOD_VERSION"
  # PyTorch >= 2.1 headers need C++17; the sdist pins C++14.
  sed -i 's/CMAKE_CXX_STANDARD 14/CMAKE_CXX_STANDARD 17/; s/-std=c++14/-std=c++17/g' \
    "$src/CMakeLists.txt" "$src/horovod/torch/CMakeLists.txt"
  local gpu_env=()
  [ "$GPU" = 1 ] && nccl_build_env "$src" gpu_env
  mkdir -p "$WHEEL_DIR"
  ( cd "$src" && env "${gpu_env[@]}" CMAKE_POLICY_VERSION_MINIMUM=3.5 HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_MPI=1 \
      HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_MXNET=1 \
      MAKEFLAGS="-j$(nproc)" "$PY" -m pip wheel -q --no-build-isolation --no-deps -w "$tmp/dist" . )
  mv "$tmp"/dist/horovod-*.whl "$WHEEL_DIR"/
  rm -rf "$tmp"
}

# The environment of a Horovod build with NCCL, into the array named $2; raises horovod/torch
# to C++20 in the sdist at $1 (torch >= 2.14's headers use operator<=>).
nccl_build_env() {
  local src="$1"; local -n out="$2"
  local cuda_home="${HVD_QSPARSE_CUDA_HOME:-$(readlink -f /usr/local/cuda)}"
  [ -x "$cuda_home/bin/nvcc" ] || { log "no CUDA toolkit at $cuda_home (set HVD_QSPARSE_CUDA_HOME)"; exit 1; }
  local nccl; nccl="$("$PY" -c "import nvidia.nccl; print(list(nvidia.nccl.__path__)[0])")"
  # the wheel ships only libnccl.so.2; CMake's find_library looks for libnccl.so
  [ -e "$nccl/lib/libnccl.so" ] || ln -s libnccl.so.2 "$nccl/lib/libnccl.so"
  sed -i 's/CMAKE_CXX_STANDARD 17/CMAKE_CXX_STANDARD 20/; s/-std=c++17/-std=c++20/g' "$src/horovod/torch/CMakeLists.txt"
  out=(HOROVOD_GPU_OPERATIONS=NCCL HOROVOD_NCCL_LINK=SHARED "HOROVOD_NCCL_INCLUDE=$nccl/include"
       "HOROVOD_NCCL_LIB=$nccl/lib" "HOROVOD_CUDA_HOME=$cuda_home" "CUDA_HOME=$cuda_home"
       "HOROVOD_BUILD_CUDA_CC_LIST=${HVD_QSPARSE_CUDA_CC:-80,90}" "PATH=$cuda_home/bin:$PATH")
}

install_horovod() {
  "$PY" -c "import horovod, horovod.torch as hvd, sys
sys.exit(horovod.__version__ != '$HOROVOD_VERSION' or ('$GPU' == '1' and not hvd.nccl_built()))" 2>/dev/null \
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
