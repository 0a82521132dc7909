"""Run-time choice of the ops backend (thinc style): CuPy kernels for CUDA tensors, the torch
reference with its faster CPU paths (``cpu_fast``) for CPU tensors.

``HVD_QSPARSE_OPS=reference`` (or ``torch``) forces the torch reference everywhere, which is how
a suspected kernel bug is ruled in or out without changing code.
"""
import importlib
import os
from functools import lru_cache

import torch

from hvd_qsparse.ops.cpu_fast import FastCpuOps
from hvd_qsparse.ops.reference import TorchOps

REFERENCE = TorchOps()
FAST_CPU = FastCpuOps()
ENV_VAR = "HVD_QSPARSE_OPS"


def force_reference() -> bool:
    """True when the environment asks for the torch reference only."""
    return os.environ.get(ENV_VAR, "auto").lower() in ("reference", "torch")


@lru_cache(maxsize=1)
def _cuda_backend():
    """The CuPy backend, or None where CuPy, a GPU or the kernel module is missing."""
    try:
        module = importlib.import_module("hvd_qsparse.ops.cupy_ops")
        return module.CupyOps()
    except Exception:  # ImportError, no CUDA driver, kernel compile failure: use the reference
        return None


def get_ops(tensor: torch.Tensor) -> TorchOps:
    """The backend that should process ``tensor``."""
    if force_reference():
        return REFERENCE
    if tensor.is_cuda:
        backend = _cuda_backend()
        return REFERENCE if backend is None else backend
    return FAST_CPU
