"""hvd_qsparse: communication-efficient data-parallel training for Horovod and PyTorch.

``import hvd_qsparse`` needs neither CuPy nor a GPU, nor Horovod: the optimizer wrappers are
imported on first use, and the compressors subclass Horovod's ``Compressor`` when Horovod is
installed (which imports ``horovod.torch``, not MPI) and a plain base class otherwise, so the
compressors and ops also work on a GPU machine without Horovod.
"""
from hvd_qsparse import compression, error_feedback, ops
from hvd_qsparse.compression import available as available_compressors
from hvd_qsparse.compression import create as create_compressor
from hvd_qsparse.error_feedback import ErrorFeedback
from hvd_qsparse.optim.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

__version__ = "0.1.0"
#: imported on first use: name -> the subpackage that holds it
_LAZY = {"DistributedOptimizer": "algorithms", "QsparseLocalSGD": "algorithms", "available_algorithms": "algorithms",
         "CompressionHookState": "optim", "ddp_hook": "optim"}
__all__ = ["CompressionHookState", "ddp_hook", "CheckpointError", "DistributedOptimizer", "ErrorFeedback", "load_checkpoint", "save_checkpoint", "QsparseLocalSGD", "available_algorithms",
           "available_compressors", "compression", "create_compressor", "error_feedback", "ops",
           "__version__"]


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"hvd_qsparse.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'hvd_qsparse' has no attribute {name!r}")
