"""Error-feedback memory (Seide et al. 2014; Stich et al. 2018; Karimireddy et al. 2019).

For a vector v to send through a compressor C with decoder D, per tensor name:

    p = C(v + m);    m ← v + m − D(p);    send p.

Invariant, exact up to float rounding: D(p) + m_new = v + m_old. Nothing is lost, only
delayed.

With a decay β ∈ (0, 1] (SparseLoCo, Sarfi et al., arXiv 2508.15706) the memory fades before it
is added, p = C(v + β·m), m ← v + β·m − D(p), so the invariant reads D(p) + m_new = v + β·m_old;
β = 1 is the rule above. SparseLoCo uses it in place of an outer momentum: the residual then
acts as a momentum of the model changes that were not yet sent. One instance serves a worker pass; a second instance serves a server pass
(DoubleSqueeze's δ̄), since the rule is the same.
"""
from typing import Dict, NamedTuple, Optional, Tuple

import torch

from hvd_qsparse.compression import Compressor, Context, NonFiniteInputError
from hvd_qsparse.ops import Selection
from hvd_qsparse.validation import check_decay


class Compressed(NamedTuple):
    """One tensor through error feedback: the payload, its context, what it stands for
    (``ops.Selection``) and whether the input was finite."""

    payload: torch.Tensor
    ctx: Context
    selection: Selection
    finite: bool


class ErrorFeedback:
    """Per-tensor residual memories, created as zeros on first use.

    Args:
        decay: β, the factor applied to a memory before it is added (1.0: no decay).

    Attributes:
        memory: tensor name → residual, same shape as the tensor, fp32.
    """

    def __init__(self, decay: float = 1.0):
        self.decay = check_decay(decay)
        self.memory: Dict[str, torch.Tensor] = {}

    def compress(self, name: str, value: torch.Tensor, compressor: Compressor, seed: Optional[int] = None,
                 stream: int = 0) -> Tuple[torch.Tensor, Context, Selection]:
        """Compress ``value + memory[name]`` and keep what did not get through.

        The memory is updated from the selection the compressor made (for sparse compressors
        only the k kept entries are touched); the payload is never decoded here.

        Returns:
            ``(payload, ctx, selection)``: what to send, how to decode it, and D(payload) as the
            compressor computed it (``ops.Selection``).

        Raises:
            ValueError: the compressor refused the input (non-float, NaN/Inf); the memory is
                then left exactly as it was.
        """
        if not value.is_floating_point():
            raise ValueError(f"error feedback for {name!r}: tensor dtype {value.dtype} is not supported; "
                             "accepted dtypes: float16, bfloat16, float32, float64")
        payload, ctx, selection, residual = compressor.compress_with_feedback(
            value, self._memory_for(name, value), seed=seed, stream=stream)
        self.memory[name] = residual
        return payload, ctx, selection

    def compress_finite(self, name: str, value: torch.Tensor, compressor: Compressor, seed: Optional[int] = None,
                        stream: int = 0) -> Compressed:
        """``compress``, but a non-finite input is not an error: it leaves the memory untouched,
        ``finite`` is False (the caller marks the tensor, so every rank learns of it), and the
        collective still matches on every rank: a lossy compressor stands in a payload of zeros
        of the same size, a summable one (``none``, ``fp16``) sends the values as they are, as
        Horovod's allreduce does.
        """
        try:
            return Compressed(*self.compress(name, value, compressor, seed=seed, stream=stream), True)
        except NonFiniteInputError:
            if compressor.summable:
                memory = self._memory_for(name, value)
                compensated = value.detach().float() + (0.0 if memory is None else memory)
                return Compressed(*compressor.compress_selected(compensated, seed, stream, check_finite=False), False)
            zeros = torch.zeros_like(value, dtype=torch.float32)
            return Compressed(*compressor.compress_selected(zeros, seed=seed, stream=stream), False)

    def _memory_for(self, name: str, value: torch.Tensor) -> Optional[torch.Tensor]:
        """β·m for ``name`` (a new tensor when β < 1: the stored memory is never written into)."""
        mem = self.memory.get(name)
        if mem is not None and mem.shape != value.shape:
            raise ValueError(f"error feedback for {name!r}: memory has shape {tuple(mem.shape)}, "
                             f"the tensor has {tuple(value.shape)}")
        if mem is not None and self.decay != 1.0:
            mem = mem * self.decay
        return mem

    def snapshot(self) -> Dict[str, torch.Tensor]:
        """The memories as they are now; ``compress`` replaces entries instead of writing into
        them, so this shallow copy stays exact until ``restore``."""
        return dict(self.memory)

    def restore(self, snapshot: Dict[str, torch.Tensor]) -> None:
        """Go back to a ``snapshot`` (a step that every rank skips leaves no trace)."""
        self.memory = dict(snapshot)

    def residual_norm(self) -> float:
        """L2 norm of all memories together (a health figure for logs)."""
        return float(sum(float(m.pow(2).sum()) for m in self.memory.values()) ** 0.5)

    def state_dict(self) -> dict:
        """A copy of every memory, for checkpoints."""
        return {"memory": {name: mem.detach().clone() for name, mem in self.memory.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore memories saved by ``state_dict``."""
        self.memory = {name: mem.detach().clone().float() for name, mem in state["memory"].items()}

    def reset(self) -> None:
        """Forget all residuals."""
        self.memory.clear()
