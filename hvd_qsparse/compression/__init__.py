"""Compressors registered by name; ``create(name, ratio=..., levels=...)`` builds one."""
from hvd_qsparse.compression.base import Compressor, Context, NonFiniteInputError, check_levels, check_ratio
from hvd_qsparse.compression.quantizers import FP16Compressor, NoneCompressor, QSGDCompressor, SignCompressor
from hvd_qsparse.compression.factory import available, create, describe, with_ratio
from hvd_qsparse.compression.registry import discover, register_quantizer, register_sparsifier
from hvd_qsparse.compression.sparse import SparseCompressor
from hvd_qsparse.compression.sparsifiers import RandK, Sparsifier, TopK
from hvd_qsparse.compression.threshold import ThresholdSparsifier

__all__ = [
    "Compressor", "Context", "NonFiniteInputError", "FP16Compressor", "NoneCompressor", "QSGDCompressor", "RandK",
    "SignCompressor", "SparseCompressor", "Sparsifier", "TopK", "available", "check_levels",
    "check_ratio", "create", "describe", "discover", "register_quantizer", "register_sparsifier",
    "ThresholdSparsifier", "with_ratio",
]
