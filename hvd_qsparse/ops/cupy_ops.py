"""The CuPy backend: the reference's operations on CUDA tensors through the kernels of ``kernels/``.

Unverified on a GPU (no GPU has run it yet), so it is opt-in: ``HVD_QSPARSE_OPS=cupy``
(``ops.dispatch``). What is checked on every CI run without a GPU: each module compiles through
NVRTC for sm_80 and sm_90 with the options used here, every kernel named here exists in its
module, and the ``__host__ __device__`` logic the kernels call matches the torch reference byte
for byte (``tests/kernels``). ``launch/gpu_check.sh`` runs ``tests/gpu`` against this class on a
GPU.

Tensors cross into the kernels zero-copy (``cupy.from_dlpack``); every output is allocated by
torch (its caching allocator) and every launch runs on torch's current stream
(``cupy.cuda.ExternalStream``), so the kernels order with the surrounding torch work. No method
reads a device value back to the host except the non-finite check of the fused error feedback,
which the reference makes too.
"""
from functools import lru_cache
from typing import Callable, List, Optional, Tuple

import cupy
import numpy
import torch

from hvd_qsparse.ops.counter_random import unseeded
from hvd_qsparse.ops.kernel_sources import compile_options, kernel_source
from hvd_qsparse.ops.packing import ceil_log2, packed_nbytes
from hvd_qsparse.ops.reference import TorchOps
from hvd_qsparse.ops.selection import Selection

#: module -> the kernels this backend launches from it (tests/kernels checks each is compiled)
KERNELS = {
    "radix_select": ("radix_histogram", "radix_pick", "select_counts", "chunk_taken", "select_compact"),
    "error_feedback": ("ef_compensate_histogram", "gather", "ef_subtract", "scatter_add"),
    "quantize": ("reduce_f64", "sign_scale", "qsgd_scale", "pack_sign", "pack_qsgd", "pack_codes",
                 "unpack_codes", "sign_values", "sign_decode", "qsgd_values", "qsgd_decode"),
}
#: mirrors of kernels/qsparse_device.cuh
KEY_MAGNITUDE, KEY_RANDOM = 0, 1
RADIX_PASSES, RADIX_BINS, NONFINITE_BIN = 3, 2048, 0x7F800000 >> 21
CHUNK, THREADS = 1024, 256
#: operators with a fused error-feedback path (``Compressor.kernel_spec`` names)
FUSED = ("topk", "topk+sign")


@lru_cache(maxsize=None)
def _module(name: str) -> "cupy.RawModule":
    return cupy.RawModule(code=kernel_source(name), options=compile_options(name))


def _kernel(module: str, name: str):
    return _module(module).get_function(name)


def _arg(tensor: torch.Tensor):
    """A zero-copy CuPy view of a contiguous CUDA tensor."""
    return cupy.from_dlpack(tensor.detach().contiguous())


def _grid(count: int) -> int:
    """Blocks of ``THREADS`` covering ``count`` items (at least one)."""
    return max(1, -(-count // THREADS))


class CupyOps(TorchOps):
    """``TorchOps`` with CUDA kernels; anything without one is inherited from the reference."""

    name = "cupy"

    def __init__(self):
        for module, names in KERNELS.items():
            for name in names:
                _kernel(module, name)  # compile now: a failure falls back to the reference at dispatch

    def _launch(self, module: str, name: str, blocks: int, args: tuple) -> None:
        converted = tuple(_arg(a) if isinstance(a, torch.Tensor) else a for a in args)
        with cupy.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream):
            _kernel(module, name)((blocks,), (THREADS,), converted)

    @staticmethod
    def _stride_blocks(device: torch.device, count: int) -> int:
        """Grid of a grid-stride kernel: enough blocks to fill the device, no more than needed."""
        return min(_grid(count), 8 * torch.cuda.get_device_properties(device).multi_processor_count)

    # --- selection ------------------------------------------------------------------------
    def _select(self, kind: int, x: torch.Tensor, seed: int, n: int, k: int,
                first_histogram: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The k largest keys' indices, ascending (radix_select.cu's driver)."""
        device = x.device
        state = torch.tensor([0, k], dtype=torch.int64, device=device)
        hist = torch.zeros(RADIX_BINS, dtype=torch.int64, device=device)
        seed, count = numpy.uint64(seed), numpy.int64(n)
        for pass_ in range(RADIX_PASSES):
            if pass_ or first_histogram is None:
                hist.zero_()
                self._launch("radix_select", "radix_histogram", self._stride_blocks(device, n),
                             (numpy.int32(kind), x, seed, count, numpy.int32(pass_), state, hist))
            else:
                hist = first_histogram
            self._launch("radix_select", "radix_pick", 1, (hist, numpy.int32(pass_), state))
        chunks = -(-n // CHUNK)
        above, equal, taken = (torch.empty(chunks, dtype=torch.int64, device=device) for _ in range(3))
        self._launch("radix_select", "select_counts", chunks, (numpy.int32(kind), x, seed, count, state, above, equal))
        equal_before = equal.cumsum(0) - equal
        self._launch("radix_select", "chunk_taken", _grid(chunks),
                     (above, equal, equal_before, state, taken, numpy.int64(chunks)))
        offset = taken.cumsum(0) - taken
        out = torch.empty(k, dtype=torch.int64, device=device)
        self._launch("radix_select", "select_compact", chunks,
                     (numpy.int32(kind), x, seed, count, state, equal_before, offset, out))
        return out

    def topk_indices(self, x: torch.Tensor, k: int) -> torch.Tensor:
        flat = x.detach().reshape(-1).float()
        if k >= flat.numel():
            return torch.arange(flat.numel(), device=x.device)
        return self._select(KEY_MAGNITUDE, flat, 0, flat.numel(), k)

    def randk_indices(self, d: int, k: int, seed: int, device: torch.device) -> torch.Tensor:
        if k >= d or torch.device(device).type != "cuda":
            return super().randk_indices(d, k, seed, device)
        return self._select(KEY_RANDOM, torch.zeros(1, device=device), seed, d, k)

    def scatter_add(self, out: torch.Tensor, indices: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        if out.dtype != torch.float32 or not out.is_contiguous() or indices.numel() == 0:
            return super().scatter_add(out, indices, values)
        self._launch("error_feedback", "scatter_add", _grid(indices.numel()),
                     (out, indices.to(torch.int64), values.float(), numpy.int64(indices.numel())))
        return out

    # --- quantizers -----------------------------------------------------------------------
    def _sum_f64(self, kind: int, x: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(1, dtype=torch.float64, device=x.device)
        self._launch("quantize", "reduce_f64", self._stride_blocks(x.device, x.numel()),
                     (numpy.int32(kind), x, numpy.int64(x.numel()), total))
        return total

    def sign_encode(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = x.detach().reshape(-1).float()
        n = x.numel()
        if n == 0:
            return super().sign_encode(x)
        scale = torch.empty(1, dtype=torch.float32, device=x.device)
        self._launch("quantize", "sign_scale", 1, (self._sum_f64(0, x), numpy.int64(n), scale))
        packed = torch.empty(packed_nbytes(n, 1), dtype=torch.uint8, device=x.device)
        self._launch("quantize", "pack_sign", _grid(packed.numel()), (x, numpy.int64(n), packed, numpy.int64(packed.numel())))
        values = torch.empty(n, dtype=torch.float32, device=x.device)
        self._launch("quantize", "sign_values", _grid(n), (x, numpy.int64(n), scale, values))
        return scale, packed, values

    def sign_decode(self, scale: torch.Tensor, packed: torch.Tensor, count: int) -> torch.Tensor:
        if count == 0:
            return super().sign_decode(scale, packed, count)
        out = torch.empty(count, dtype=torch.float32, device=packed.device)
        self._launch("quantize", "sign_decode", _grid(count), (packed, numpy.int64(count), scale.float(), out))
        return out

    def qsgd_encode(self, x: torch.Tensor, levels: int, seed: Optional[int]):
        x = x.detach().reshape(-1).float()
        n = x.numel()
        if n == 0:
            return super().qsgd_encode(x, levels, seed)
        seed = numpy.uint64(unseeded() if seed is None else seed)
        norm = torch.empty(1, dtype=torch.float32, device=x.device)
        levels_over_norm = torch.empty(1, dtype=torch.float64, device=x.device)
        self._launch("quantize", "qsgd_scale", 1, (self._sum_f64(1, x), numpy.int32(levels), norm, levels_over_norm))
        width = 1 + ceil_log2(levels + 1)
        packed = torch.empty(packed_nbytes(n, width), dtype=torch.uint8, device=x.device)
        self._launch("quantize", "pack_qsgd", _grid(packed.numel()),
                     (x, numpy.int64(n), levels_over_norm, numpy.int32(levels), seed, numpy.int32(width), packed,
                      numpy.int64(packed.numel())))
        values = torch.empty(n, dtype=torch.float32, device=x.device)
        self._launch("quantize", "qsgd_values", _grid(n),
                     (x, numpy.int64(n), levels_over_norm, numpy.int32(levels), seed, norm, values))
        return norm, packed, values

    def qsgd_decode(self, norm: torch.Tensor, packed: torch.Tensor, count: int, levels: int) -> torch.Tensor:
        if count == 0:
            return super().qsgd_decode(norm, packed, count, levels)
        out = torch.empty(count, dtype=torch.float32, device=packed.device)
        self._launch("quantize", "qsgd_decode", _grid(count),
                     (packed, numpy.int64(count), numpy.int32(1 + ceil_log2(levels + 1)), norm.float(),
                      numpy.int32(levels), out))
        return out

    def pack_indices(self, indices: torch.Tensor, width: int) -> torch.Tensor:
        """``pack_bits(indices, width)`` by kernel."""
        packed = torch.empty(packed_nbytes(indices.numel(), width), dtype=torch.uint8, device=indices.device)
        if packed.numel():
            self._launch("quantize", "pack_codes", _grid(packed.numel()),
                         (indices, numpy.int64(indices.numel()), numpy.int32(width), packed, numpy.int64(packed.numel())))
        return packed

    # --- error feedback -------------------------------------------------------------------
    def compress_with_feedback(self, value: torch.Tensor, memory: Optional[torch.Tensor],
                               encode: Callable[[torch.Tensor], Tuple[List[torch.Tensor], Selection]],
                               spec: Optional[tuple] = None):
        """Fused for top-k and top-k + scaled sign: one pass computes u = v + m and the first
        radix histogram, the rest works on the k kept entries; other operators compose the
        kernels above through the compressor (the reference's path)."""
        params = dict(spec[1]) if spec else {}
        n = value.numel()
        if not spec or spec[0] not in FUSED or not value.is_cuda or "k" not in params or params["k"] >= n:
            return super().compress_with_feedback(value, memory, encode, spec)
        g = value.detach().reshape(-1).float()
        m = g if memory is None else memory.reshape(-1).float()
        u = torch.empty_like(g)
        hist = torch.zeros(RADIX_BINS, dtype=torch.int64, device=g.device)
        self._launch("error_feedback", "ef_compensate_histogram", self._stride_blocks(g.device, n),
                     (g, m, numpy.int32(memory is not None), u, numpy.int64(n), hist))
        if int(hist[NONFINITE_BIN:].sum()):
            return super().compress_with_feedback(value, memory, encode, spec)  # raises the compressor's error
        k = params["k"]
        indices = self._select(KEY_MAGNITUDE, u, 0, n, k, first_histogram=hist)
        kept = torch.empty(k, dtype=torch.float32, device=g.device)
        self._launch("error_feedback", "gather", _grid(k), (u, indices, numpy.int64(k), kept))
        if spec[0] == "topk+sign":
            scale, signs, values = self.sign_encode(kept)
            parts = [scale, signs]
        else:
            values, parts = kept, [kept]
        parts.append(self.pack_indices(indices, ceil_log2(n)))
        self._launch("error_feedback", "ef_subtract", _grid(k), (u, indices, values, numpy.int64(k)))
        return parts, Selection(values, indices), u
