"""The compressor interface: Horovod's ``compress``/``decompress`` plus payload framing and bits.

A compressor is pure and stateless: its only state is its hyperparameters, so one instance
serves every tensor and every rank. Randomness enters through the ``seed`` argument and is
recorded in the context, so any rank that knows (shape, seed) can decode anyone's payload.

Payloads: a summable compressor (``none``, ``fp16``) returns a dense float tensor that an
allreduce may sum, exactly as Horovod's own compressors do. All others return one flat
``uint8`` tensor framed by ``hvd_qsparse.ops.join_parts`` according to ``layout(numel)``.
"""
from abc import ABCMeta, abstractmethod
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch

from hvd_qsparse.ops import as_bytes, derive_seed, join_parts, layout_nbytes, split_parts

try:  # Subclass Horovod's interface where Horovod is installed (stock DistributedOptimizer).
    from horovod.torch.compression import Compressor as _HorovodCompressor
except Exception:  # pragma: no cover - a GPU box without Horovod still runs the compressors
    _HorovodCompressor = object

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
Layout = List[Tuple[torch.dtype, int]]


class NonFiniteInputError(ValueError):
    """The tensor handed to a compressor holds NaN or Inf (nothing was compressed)."""


class Context(NamedTuple):
    """What a decoder needs besides the payload: identical on every rank for the same tensor."""

    shape: torch.Size
    dtype: torch.dtype
    seed: Optional[int]

    @property
    def numel(self) -> int:
        return int(torch.Size(self.shape).numel())


def check_ratio(ratio: float) -> float:
    """Validate a sparsification ratio: a number in (0, 1]."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 < float(ratio) <= 1.0:
        raise ValueError(f"ratio must be a number in (0, 1] (fraction of entries kept), got {ratio!r}")
    return float(ratio)


def check_levels(levels: int) -> int:
    """Validate a quantization level count: an integer >= 1."""
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels must be an integer >= 1 (QSGD's s), got {levels!r}")
    return levels


class Compressor(_HorovodCompressor, metaclass=ABCMeta):
    """Base class of every hvd_qsparse compressor.

    Subclasses implement ``encode``, ``decode``, ``layout`` and ``analytic_bits``; this class
    turns them into Horovod's ``compress(tensor) -> (payload, ctx)`` and
    ``decompress(payload, ctx) -> tensor``, with input validation.
    """

    name = "?"
    summable = False  # True when payloads of several ranks may be summed by an allreduce

    # --- to implement ---------------------------------------------------------------------
    @abstractmethod
    def encode(self, flat: torch.Tensor, seed: Optional[int], noise_seed: Optional[int]) -> List[torch.Tensor]:
        """Parts of the payload for the fp32 vector ``flat``.

        ``seed`` is shared by all ranks (and recorded in the context); ``noise_seed`` drives
        randomness that decoders never need, such as stochastic rounding, and differs per rank.
        """

    @abstractmethod
    def decode(self, parts: Sequence[torch.Tensor], numel: int, seed: Optional[int]) -> torch.Tensor:
        """The fp32 vector that ``parts`` stand for."""

    @abstractmethod
    def layout(self, numel: int) -> Layout:
        """``[(dtype, count), ...]`` of the parts for a vector of ``numel`` entries."""

    @abstractmethod
    def analytic_bits(self, numel: int) -> int:
        """The bit count of docs/algorithms.md's operator table for ``numel`` entries."""

    # --- Horovod's interface --------------------------------------------------------------
    def compress(self, tensor: torch.Tensor, seed: Optional[int] = None, stream: int = 0, check_finite: bool = True):
        """Compress ``tensor``; returns ``(payload, Context)``.

        Args:
            tensor: a float tensor, finite.
            seed: shared by every rank for this (step, tensor); None draws from torch's global RNG.
            stream: which independent stream of rounding noise to use (the rank), so that
                ranks sharing ``seed`` do not share quantization noise.

            check_finite: refuse NaN/Inf (False lets them through, for summable compressors
                whose allreduce carries them as Horovod's does).

        Raises:
            ValueError: a non-float tensor or (with ``check_finite``) NaN/Inf in it.
        """
        self.validate(tensor, check_finite)
        flat = tensor.detach().reshape(-1).float()
        noise_seed = None if seed is None else derive_seed(seed, "noise", stream)
        parts = self.encode(flat, seed, noise_seed)
        payload = parts[0].reshape(tensor.shape) if self.summable else join_parts(parts)
        return payload, Context(tensor.shape, tensor.dtype, seed)

    def decompress(self, payload: torch.Tensor, ctx: Context) -> torch.Tensor:
        """The dense tensor (shape and dtype of the original) that ``payload`` stands for."""
        flat = self.decode(self.parts(payload, ctx.numel), ctx.numel, ctx.seed)
        return flat.reshape(ctx.shape).to(ctx.dtype)

    def subtract_decoded_(self, target: torch.Tensor, payload: torch.Tensor, ctx: Context) -> torch.Tensor:
        """``target -= D(payload)`` in place (error feedback's memory update); sparse
        compressors touch only the k decoded entries instead of building a dense tensor."""
        return target.sub_(self.decompress(payload, ctx).to(target.dtype))

    # --- payload helpers ------------------------------------------------------------------
    def parts(self, payload: torch.Tensor, numel: int) -> List[torch.Tensor]:
        """Split a payload (its own dtype or a byte view of it) into typed parts."""
        return split_parts(as_bytes(payload), self.layout(numel))

    def payload_nbytes(self, numel: int) -> int:
        """Bytes a payload occupies in a fused buffer (padded to the payload alignment)."""
        return layout_nbytes(self.layout(numel))

    def decompress_sum(self, payloads: Sequence[torch.Tensor], ctx: Context) -> torch.Tensor:
        """Sum (fp32, flat) of the decoded payloads of several ranks for the same tensor."""
        total = torch.zeros(ctx.numel, dtype=torch.float32, device=payloads[0].device)
        for payload in payloads:
            total += self.decode(self.parts(payload, ctx.numel), ctx.numel, ctx.seed)
        return total

    def validate(self, tensor: torch.Tensor, check_finite: bool = True) -> None:
        """Refuse non-float tensors and non-finite values with a ValueError naming both."""
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"compressor {self.name!r}: expected a torch.Tensor, got {type(tensor).__name__}")
        if tensor.dtype not in FLOAT_DTYPES:
            accepted = ", ".join(str(d).replace("torch.", "") for d in FLOAT_DTYPES)
            raise ValueError(f"compressor {self.name!r}: tensor dtype {tensor.dtype} is not supported; "
                             f"accepted dtypes: {accepted}")
        if not check_finite or torch.isfinite(tensor.sum()):
            return  # the sum of finite values rarely overflows, and then the full check runs
        finite = torch.isfinite(tensor)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise NonFiniteInputError(f"compressor {self.name!r}: input contains NaN or Inf ({bad} of "
                             f"{tensor.numel()} entries); refusing to compress (memory left untouched)")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({params})"

    def params(self) -> dict:
        """Hyperparameters, as passed to the registry."""
        return {}
