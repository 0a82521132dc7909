"""hvd_qsparse: communication-efficient data-parallel training for Horovod and PyTorch.

Importing this package needs neither CuPy nor a GPU; Horovod and MPI are imported only by the
layers that exchange tensors (``comm`` and above).
"""
from hvd_qsparse import compression, error_feedback, ops
from hvd_qsparse.compression import available as available_compressors
from hvd_qsparse.compression import create as create_compressor
from hvd_qsparse.error_feedback import ErrorFeedback

__version__ = "0.1.0"
__all__ = ["ErrorFeedback", "available_compressors", "compression", "create_compressor",
           "error_feedback", "ops", "__version__"]
