"""Run-time choice of the ops backend (thinc style): the torch reference with its faster CPU
paths (``cpu_fast``) for CPU tensors; for CUDA tensors the torch reference, or the CuPy kernels
of ``kernels/`` once they are verified on a GPU or when asked for.

``HVD_QSPARSE_OPS`` picks: ``auto`` (the default), ``reference`` (or ``torch``: the torch
reference everywhere, how a suspected kernel bug is ruled in or out without changing code), or
``cupy`` (the kernels for CUDA tensors). Why the kernels are opt-in under ``auto``: no GPU has run
``launch/gpu_check.sh`` yet; ``KERNELS_VERIFIED_ON`` records the device and date of the first
passing run, and from then on ``auto`` uses them.
"""
import importlib
import logging
import os
from functools import lru_cache

import torch

from hvd_qsparse.ops.cpu_fast import FastCpuOps
from hvd_qsparse.ops.reference import TorchOps

REFERENCE = TorchOps()
FAST_CPU = FastCpuOps()
ENV_VAR = "HVD_QSPARSE_OPS"
CHOICES = ("auto", "reference", "torch", "cupy")
#: the launch/gpu_check.sh run that verified the kernels ("<device>, <date>"), or None
KERNELS_VERIFIED_ON = None
log = logging.getLogger(__name__)


def ops_choice() -> str:
    """The backend asked for by ``HVD_QSPARSE_OPS``.

    Raises:
        ValueError: a value other than ``CHOICES``, naming the variable.
    """
    choice = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if choice not in CHOICES:
        raise ValueError(f"{ENV_VAR}={os.environ[ENV_VAR]!r} is not a backend; accepted: {', '.join(CHOICES)}")
    return choice


def force_reference() -> bool:
    """True when the environment asks for the torch reference only."""
    return ops_choice() in ("reference", "torch")


def kernels_wanted() -> bool:
    """True when CUDA tensors should go to the CuPy kernels."""
    choice = ops_choice()
    return choice == "cupy" or (choice == "auto" and KERNELS_VERIFIED_ON is not None)


#: why the CuPy backend is not in use (None while it is, or before a CUDA tensor asked for it)
CUDA_BACKEND_UNAVAILABLE = None


@lru_cache(maxsize=1)
def _cuda_backend():
    """The CuPy backend, or None where CuPy, a GPU or a kernel module is missing; the reason
    is kept in ``CUDA_BACKEND_UNAVAILABLE`` and logged once, so a fallback is never silent."""
    global CUDA_BACKEND_UNAVAILABLE
    try:
        module = importlib.import_module("hvd_qsparse.ops.cupy_ops")
        return module.CupyOps()
    except Exception as error:  # ImportError, no CUDA driver, kernel compile failure: use the reference
        CUDA_BACKEND_UNAVAILABLE = f"{type(error).__name__}: {error}"
        log.warning("hvd_qsparse: CUDA tensors use the torch reference ops, not CuPy kernels (%s)",
                    CUDA_BACKEND_UNAVAILABLE)
        return None


def get_ops(tensor: torch.Tensor) -> TorchOps:
    """The backend that should process ``tensor``."""
    if force_reference():
        return REFERENCE
    if tensor.is_cuda:
        backend = _cuda_backend() if kernels_wanted() else None
        return REFERENCE if backend is None else backend
    return FAST_CPU
