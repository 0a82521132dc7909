"""The torch reference backend: every tensor operation of the compressors, on any device.

This backend defines correctness. A faster backend (the CuPy kernels of ``kernels/``) is a
subclass with the same method signatures and must return identical selections and bytes.
All randomness comes from an explicit integer seed, so results are reproducible and ranks that
share a seed draw the same numbers.
"""
import hashlib
import math
from typing import Callable, List, Optional, Tuple

import torch

from hvd_qsparse.ops.counter_random import random_keys, uniform, unseeded
from hvd_qsparse.ops.packing import ceil_log2, pack_bits, unpack_bits
from hvd_qsparse.ops.selection import Selection


#: the largest finite float32
FLOAT32_MAX = torch.finfo(torch.float32).max


def derive_seed(*parts) -> int:
    """A 63-bit seed from any mix of ints and strings, stable across processes and runs.

    Python's ``hash`` is salted per process, so ranks could not agree on it; blake2b is not.
    """
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


def make_generator(seed: int, device: torch.device) -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


def magnitude_keys(x: torch.Tensor) -> torch.Tensor:
    """The bits of ``|x|`` in float32 as int32: non-negative floats order like their bits."""
    return x.detach().reshape(-1).float().abs().view(torch.int32)


def topk_of_keys(keys: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest of the non-negative integer ``keys`` (below 2**31), ascending,
    ties resolved towards the lowest indices.

    Why int64 composite keys: ``key << 32 | (d − 1 − i)`` is unique per entry and larger for a
    lower index among equal keys, so one top-k over them picks exactly the set, with no
    data-dependent sizes (``nonzero``), hence no host synchronisation on a GPU (``torch.topk``
    alone leaves tie order unspecified). The radix select of ``kernels/radix_select.cu`` picks
    the same set.
    """
    d = keys.numel()
    if k >= d:
        return torch.arange(d, device=keys.device)
    composite = (keys.reshape(-1).to(torch.int64) << 32) | torch.arange(d - 1, -1, -1, device=keys.device,
                                                                        dtype=torch.int64)
    return torch.topk(composite, k, sorted=False).indices.sort().values


def exact_topk_indices(x: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` entries of largest ``|x|`` (compared in float32), ascending, ties to
    the lowest indices, so the selected set is a function of ``x`` alone."""
    return topk_of_keys(magnitude_keys(x), k)


class TorchOps:
    """Reference implementations (pure torch)."""

    name = "torch"

    # --- error feedback -------------------------------------------------------------------
    def compress_with_feedback(self, value: torch.Tensor, memory: Optional[torch.Tensor],
                               encode: Callable[[torch.Tensor], Tuple[List[torch.Tensor], Selection]],
                               spec: Optional[tuple] = None):
        """Error feedback's step as one entry: u = v + m, p = C(u), m ← u − D(p).

        This is the slot a fused kernel fills (compensate, select, quantize, pack and update the
        memory in one pass over the tensor). The reference composes the steps: ``encode`` is the
        compressor's (it returns the payload's parts and their ``Selection``), and the memory is
        updated from the selection, so nothing is decoded.

        Args:
            value: flat fp32 v. memory: flat fp32 m, or None (zeros).
            encode: the compressor's encoder, for backends without a fused kernel for ``spec``.
            spec: the operator, ``(name, ((param, value), ...))`` (``Compressor.kernel_spec``;
                a sparsifier's carries ``k``),
                by which a backend picks its fused kernel; the reference ignores it.

        Returns:
            ``(parts, selection, new_memory)``.
        """
        compensated = value.float().clone() if memory is None else value.float() + memory
        parts, selection = encode(compensated)
        return parts, selection, selection.residual(compensated)

    # --- sparsification -------------------------------------------------------------------
    def topk_indices(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Indices of the ``k`` entries of largest ``|x|``, ascending (see ``exact_topk_indices``)."""
        return exact_topk_indices(x, k)

    def randk_indices(self, d: int, k: int, seed: int, device: torch.device) -> torch.Tensor:
        """``k`` distinct indices of ``range(d)`` drawn uniformly from ``seed``, ascending: those
        of the k largest counter-hash keys (``counter_random.random_keys``), which are a uniform
        k-subset and the same on every device."""
        if k >= d:
            return torch.arange(d, device=device)
        return topk_of_keys(random_keys(seed, d, device), k)

    def scatter_add(self, out: torch.Tensor, indices: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """``out[indices] += values`` with repeated indices accumulated."""
        return out.index_add_(0, indices, values.to(out.dtype))

    # --- QSGD -----------------------------------------------------------------------------
    def qsgd_encode(self, x: torch.Tensor, levels: int, seed: Optional[int]):
        """QSGD (Alistarh et al., 2017) with ``levels`` = s and stochastic rounding.

        Returns the fp32 norm (1 element), per entry ``code = 2 * level + negative`` packed in
        ``1 + ceil(log2(s + 1))`` bits, and the fp32 values the codes stand for (what
        ``qsgd_decode`` gives back, bit for bit). The norm and the levels are computed in
        float64, so no finite input overflows or underflows into NaN; a norm beyond float32's
        range is sent as the largest float32, which scales every decoded value down by
        max/‖x‖ (still a contraction; under error feedback the rest stays in the memory).
        """
        x = x.float()
        norm64 = torch.linalg.vector_norm(x, dtype=torch.float64)
        norm = norm64.clamp(max=FLOAT32_MAX).float().reshape(1)
        # A zero norm divides by one instead (every level is then 0): no branch on the value,
        # so no host synchronisation.
        safe_norm = torch.where(norm64 > 0, norm64, torch.ones_like(norm64))
        scaled = x.abs().double() * (levels / safe_norm)
        lower = scaled.floor()
        rand = self._uniform(x.numel(), seed, x.device)
        level = (lower + (rand < scaled - lower).double()).clamp_(0, levels).to(torch.int64)
        negative = x < 0
        code = (level << 1) | negative.to(torch.int64)
        values = level.float() * (1.0 - 2.0 * negative.float()) * (norm.float() / levels)
        return norm, pack_bits(code, 1 + ceil_log2(levels + 1), check=False), values

    def qsgd_decode(self, norm: torch.Tensor, packed: torch.Tensor, count: int, levels: int) -> torch.Tensor:
        """Inverse of ``qsgd_encode``: ``norm * sign * level / s`` as fp32."""
        code = unpack_bits(packed, count, 1 + ceil_log2(levels + 1))
        sign = 1.0 - 2.0 * (code & 1).float()
        return (code >> 1).float() * sign * (norm.float() / levels)

    # --- scaled sign ----------------------------------------------------------------------
    def sign_encode(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Scaled sign: the fp32 scale ``||x||_1 / d``, one bit per entry (1 = negative), and
        the fp32 values they stand for (what ``sign_decode`` gives back). The sum runs in
        float64, so the scale of finite input is finite (at most max |x_i|)."""
        x = x.float()
        scale = (x.abs().sum(dtype=torch.float64) / max(1, x.numel())).float().reshape(1)
        negative = (x < 0).to(torch.int64)
        return scale, pack_bits(negative, 1, check=False), (1.0 - 2.0 * negative.float()) * scale.float()

    def sign_decode(self, scale: torch.Tensor, packed: torch.Tensor, count: int) -> torch.Tensor:
        """Inverse of ``sign_encode``: ``scale * (+1 | -1)``."""
        negative = unpack_bits(packed, count, 1).float()
        return (1.0 - 2.0 * negative) * scale.float()

    # --- helpers --------------------------------------------------------------------------
    @staticmethod
    def _uniform(count: int, seed: Optional[int], device: torch.device) -> torch.Tensor:
        """Counter-based uniforms (the kernels draw the same); without a seed, one is drawn from
        torch's global CPU generator."""
        return uniform(unseeded() if seed is None else seed, count, device)


def qsgd_beta(d: int, levels: int) -> float:
    """The QSGD variance factor ``beta = min(d / s^2, sqrt(d) / s)``: E||Q(x) - x||^2 <= beta ||x||^2."""
    return min(d / levels**2, math.sqrt(d) / levels)
