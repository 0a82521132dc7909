"""The compressor interface: Horovod's ``compress``/``decompress`` plus payload framing and bits.

A compressor is pure and stateless: its only state is its hyperparameters, so one instance
serves every tensor and every rank. Randomness enters through the ``seed`` argument and is
recorded in the context, so any rank that knows (shape, seed) can decode anyone's payload.

Payloads: a summable compressor (``none``, ``fp16``) returns a dense float tensor that an
allreduce may sum, exactly as Horovod's own compressors do. All others return one flat
``uint8`` tensor framed by ``hvd_qsparse.ops.join_parts`` according to ``layout(numel)``.

An encoder returns, beside the payload's parts, the ``ops.Selection`` they stand for (the
values it computed before packing them), so a sender never decodes its own payload: error
feedback updates its memory from the selection (``compress_with_feedback``, the ops slot a
fused kernel fills) and an algorithm applies its own contribution from it.
"""
from abc import ABCMeta, abstractmethod
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch

from hvd_qsparse.backend import HorovodCompressorInterface
from hvd_qsparse.ops import Selection, as_bytes, derive_seed, get_ops, join_parts, layout_nbytes, split_parts
from hvd_qsparse.validation import check_levels, check_ratio

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
Layout = List[Tuple[torch.dtype, int]]


def all_finite(tensor: torch.Tensor) -> bool:
    """No NaN/Inf in ``tensor``: the sum first (one pass; the sum of finite values rarely
    overflows), the full check only when the sum is not finite."""
    return bool(torch.isfinite(tensor.sum())) or bool(torch.isfinite(tensor).all())


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


class Compressor(HorovodCompressorInterface, metaclass=ABCMeta):
    """Base class of every hvd_qsparse compressor.

    Subclasses implement ``encode``, ``decode``, ``layout`` and ``analytic_bits``; this class
    turns them into Horovod's ``compress(tensor) -> (payload, ctx)`` and
    ``decompress(payload, ctx) -> tensor``, with input validation.
    """

    name = "?"
    summable = False  # True when payloads of several ranks may be summed by an allreduce

    # --- to implement ---------------------------------------------------------------------
    @abstractmethod
    def encode(self, flat: torch.Tensor, seed: Optional[int],
               noise_seed: Optional[int]) -> Tuple[List[torch.Tensor], Selection]:
        """The payload's parts for the fp32 vector ``flat``, and the ``Selection`` they stand
        for (bit for bit what ``decode`` would give back).

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

    def analytic_bits_of(self, selection: Selection, numel: int) -> int:
        """The analytic bits of one payload, given what it selected (data-dependent sizes
        override this; for the registered compressors it is ``analytic_bits(numel)``)."""
        return self.analytic_bits(numel)

    # --- Horovod's interface --------------------------------------------------------------
    def compress(self, tensor: torch.Tensor, seed: Optional[int] = None, stream: int = 0, check_finite: bool = True):
        """Compress ``tensor``; returns ``(payload, Context)`` (Horovod's interface).

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
        payload, ctx, _ = self.compress_selected(tensor, seed, stream, check_finite)
        return payload, ctx

    def compress_selected(self, tensor: torch.Tensor, seed: Optional[int] = None, stream: int = 0,
                          check_finite: bool = True) -> Tuple[torch.Tensor, Context, Selection]:
        """``compress`` plus the ``Selection`` the payload stands for (nothing is decoded)."""
        self.validate(tensor, check_finite)
        parts, selection = self.encode(tensor.detach().reshape(-1).float(), seed, self._noise_seed(seed, stream))
        return self._payload(parts, tensor.shape), Context(tensor.shape, tensor.dtype, seed), selection

    def compress_with_feedback(self, value: torch.Tensor, memory: Optional[torch.Tensor], seed: Optional[int] = None,
                               stream: int = 0) -> Tuple[torch.Tensor, Context, Selection, torch.Tensor]:
        """Error feedback's step p = C(v + m), m ← v + m − D(p) through ``ops.compress_with_feedback``.

        Args:
            value: v, a float tensor. memory: m, fp32 of ``value``'s shape, or None (zeros).

        Returns:
            ``(payload, ctx, selection, new_memory)``; ``new_memory`` has ``value``'s shape.

        Raises:
            ValueError: a non-float ``value``, or NaN/Inf in v + m (nothing is changed then).
        """
        noise_seed = self._noise_seed(seed, stream)

        def encode(compensated: torch.Tensor):
            self.validate(compensated)
            return self.encode(compensated, seed, noise_seed)

        flat = value.detach().reshape(-1)
        parts, selection, residual = get_ops(flat).compress_with_feedback(
            flat, None if memory is None else memory.reshape(-1), encode, spec=self.kernel_spec(flat.numel()))
        return (self._payload(parts, value.shape), Context(value.shape, value.dtype, seed), selection,
                residual.view(value.shape))

    def kernel_spec(self, numel: int) -> tuple:
        """``(name, ((param, value), ...))``: what a fused kernel must know of this operator
        applied to ``numel`` entries."""
        return self.name, tuple(sorted(self.params().items()))

    @staticmethod
    def _noise_seed(seed: Optional[int], stream: int) -> Optional[int]:
        return None if seed is None else derive_seed(seed, "noise", stream)

    def _payload(self, parts: List[torch.Tensor], shape) -> torch.Tensor:
        return parts[0].reshape(shape) if self.summable else join_parts(parts)

    def decompress(self, payload: torch.Tensor, ctx: Context) -> torch.Tensor:
        """The dense tensor (shape and dtype of the original) that ``payload`` stands for."""
        flat = self.decode(self.parts(payload, ctx.numel), ctx.numel, ctx.seed)
        return flat.reshape(ctx.shape).to(ctx.dtype)

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
        if not check_finite or all_finite(tensor):
            return
        bad = int((~torch.isfinite(tensor)).sum())
        raise NonFiniteInputError(f"compressor {self.name!r}: input contains NaN or Inf ({bad} of "
                                  f"{tensor.numel()} entries); refusing to compress (memory left untouched)")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({params})"

    def params(self) -> dict:
        """Hyperparameters, as passed to the registry."""
        return {}
