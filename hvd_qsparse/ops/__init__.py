"""Tensor maths behind the compressors: a torch reference backend and run-time dispatch."""
from hvd_qsparse.ops.cpu_fast import FastCpuOps
from hvd_qsparse.ops.dispatch import FAST_CPU, REFERENCE, force_reference, get_ops
from hvd_qsparse.ops.packing import (
    ALIGN, aligned, as_bytes, ceil_log2, index_dtype, join_parts, layout_nbytes, pack_bits,
    packed_nbytes, split_parts, unpack_bits,
)
from hvd_qsparse.ops.selection import Selection
from hvd_qsparse.ops.reference import TorchOps, derive_seed, exact_topk_indices, make_generator, qsgd_beta

__all__ = [
    "ALIGN", "FAST_CPU", "FastCpuOps", "REFERENCE", "TorchOps", "aligned", "as_bytes", "ceil_log2",
    "derive_seed", "exact_topk_indices",
    "force_reference", "get_ops", "index_dtype", "join_parts", "layout_nbytes", "make_generator",
    "pack_bits", "packed_nbytes", "Selection", "qsgd_beta", "split_parts", "unpack_bits",
]
