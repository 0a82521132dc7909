"""Run-time choice of the ops backend (thinc style): CuPy kernels for CUDA tensors, the torch
reference with its faster CPU paths (``cpu_fast``) for CPU tensors.

``HVD_QSPARSE_OPS=reference`` (or ``torch``) forces the torch reference everywhere, which is how
a suspected kernel bug is ruled in or out without changing code.
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
log = logging.getLogger(__name__)


def force_reference() -> bool:
    """True when the environment asks for the torch reference only."""
    return os.environ.get(ENV_VAR, "auto").lower() in ("reference", "torch")


#: why the CuPy backend is not in use (None while it is, or before a CUDA tensor asked for it)
CUDA_BACKEND_UNAVAILABLE = None


@lru_cache(maxsize=1)
def _cuda_backend():
    """The CuPy backend, or None where CuPy, a GPU or the kernel module is missing; the reason
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
        backend = _cuda_backend()
        return REFERENCE if backend is None else backend
    return FAST_CPU
