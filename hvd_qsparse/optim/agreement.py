"""What every rank must agree on before a step applies: one small allreduce, no pass over data.

A non-finite value cannot travel through a lossy compressor, and a rank that skipped a step on
its own would leave the others waiting in the next collective. So each rank says, in a vector
of R + 1 int32 entries summed by one allreduce:

- entry r: 1 + the index of the first tensor rank r found non-finite (0: none). The compressors
  find it in the finiteness check they make anyway; a GradScaler's own overflow flag counts too.
- entry R: 1 when rank r compressed with a loss scale other than the one GradScaler used (the
  exchange must then be redone with the right scale; see ``optim.base``).

Every rank reads the same sums, so every rank takes the same decision: skip the step (under a
GradScaler), raise the same error naming the rank and the tensor (without one), redo, or apply.
The 4·(R + 1) bytes are counted in the step's bits (``BitCounter.record_control``). Where one
exchange carries the whole decision, the rank's entry rides in its buffer instead
(``comm.Exchange.start(flag=...)``, ``Verdict.from_flags``): no collective is added.
"""
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import torch


OVERFLOW = 1 << 30  # a GradScaler's overflow flag, no tensor index


class NonFiniteGradientError(ValueError):
    """A rank's gradient or model change held NaN or Inf and no GradScaler was stepping."""


@dataclass
class LocalReport:
    """What this rank found while compressing one exchange."""

    bad_tensor: Optional[int] = None  # index of the first non-finite tensor
    overflow: bool = False             # a GradScaler reported inf/NaN in this rank's gradients
    scale_mismatch: bool = False
    amp: bool = False                  # a GradScaler is stepping: agree on overflow and scale too

    def mark_bad(self, index: int) -> None:
        if self.bad_tensor is None or index < self.bad_tensor:
            self.bad_tensor = index

    @property
    def code(self) -> int:
        """This rank's entry: 1 + the first bad tensor's index, ``OVERFLOW`` or 0."""
        if self.bad_tensor is not None:
            return self.bad_tensor + 1
        return OVERFLOW if self.overflow else 0


@dataclass
class Verdict:
    """The agreed outcome of one exchange, identical on every rank."""

    bad: List[int] = field(default_factory=list)  # per rank: 1 + first bad tensor index, 0 = fine
    redo: bool = False
    sent_bytes: int = 0

    @classmethod
    def from_flags(cls, flag_lists: Sequence[Sequence[int]]) -> "Verdict":
        """The verdict from flags that rode in exchanges (``comm.Exchange.start(flag=...)``),
        one list of every rank's codes per exchange: per rank, the smallest non-zero code."""
        ranks = len(flag_lists[0]) if flag_lists else 0
        bad = [min((f[r] for f in flag_lists if f[r]), default=0) for r in range(ranks)]
        return cls(bad=bad)

    @property
    def non_finite(self) -> bool:
        return any(self.bad)

    def error(self, names: Sequence[str], what: str,
              kept: str = "memories, shared model and step counter untouched") -> NonFiniteGradientError:
        """The error every rank raises, naming the first rank and its tensor, and what was kept."""
        rank = next(r for r, code in enumerate(self.bad) if code)
        code = self.bad[rank]
        tensor = names[code - 1] if 0 < code <= len(names) else f"a tensor past #{len(names)}"
        return NonFiniteGradientError(
            f"rank {rank}: {what} of {tensor!r} contains NaN or Inf; every rank skipped applying this "
            f"step ({kept}). Lower the learning rate, clip gradients, or train under "
            "torch.amp.GradScaler, which makes every rank skip such steps")


def start_agreement(comm, report: LocalReport, name: str):
    """Start the allreduce of ``report``; returns ``(handle, buffer bytes)``."""
    flags = torch.zeros(comm.size + 1, dtype=torch.int32)
    flags[comm.rank] = report.code
    flags[comm.size] = int(report.scale_mismatch)
    return comm.allreduce_async(flags, name=f"{name}.agree"), flags.numel() * 4


def finish_agreement(comm, started) -> Verdict:
    """Wait for ``start_agreement``'s allreduce and read the common verdict."""
    handle, nbytes = started
    sums = comm.synchronize(handle).tolist()
    return Verdict(bad=[int(v) for v in sums[:-1]], redo=bool(sums[-1]), sent_bytes=nbytes)


def agree(comm, report: LocalReport, name: str) -> Verdict:
    """``start_agreement`` and ``finish_agreement`` in one call."""
    return finish_agreement(comm, start_agreement(comm, report, name))
