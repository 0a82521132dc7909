"""Model buffers (BatchNorm's running statistics) kept the same on every rank.

Buffers are not trained, so no gradient or model change carries them: left alone, each rank's
BatchNorm running mean and variance follow its own data and every rank evaluates a different
model. The wrapper keeps them in step with its algorithm's schedule:

- after a step that exchanged gradients (H = 1, warm-up, DoubleSqueeze, GD-SEC), rank 0's
  buffers are broadcast, as DDP's ``broadcast_buffers=True`` does before each forward: the
  parameters are identical there, so the root's statistics are as good as any rank's;
- at a model-averaging round (H > 1, RI-SGD), the buffers are averaged, as the parameters are
  (local SGD and DiLoCo average running statistics the same way);
- qsparse-async averages them once, when training ends (``finish``): its pushes are one-sided,
  and a collective at every push would make the ranks wait for each other again.

Only floating buffers move (``num_batches_tracked`` is an integer and counts the same steps on
every rank). All of them travel as one fp32 vector in one collective, and its bytes are counted
in the algorithm's bits: a broadcast as sent by the root and received by the others, an
allreduce as sent and received by every rank, the convention of ``comm.accounting``.
"""
from typing import Iterable, List, Tuple

import torch

from hvd_qsparse.comm import ring_share

BROADCAST_ROOT = 0


class BufferSync:
    """The floating buffers of a model and the two ways of making them agree.

    Args:
        comm: the ranks (``HorovodCommunicator``).
        named_buffers: ``model.named_buffers()``; names must agree across ranks.
    """

    def __init__(self, comm, named_buffers: Iterable[Tuple[str, torch.Tensor]] = ()):
        self.comm = comm
        self.named: List[Tuple[str, torch.Tensor]] = [(n, b) for n, b in named_buffers if b.is_floating_point()]
        self._serial = 0
        #: the buffers as the last average left them (the companion of x̂), or None
        self.synced = None

    def __bool__(self) -> bool:
        return bool(self.named)

    @property
    def numel(self) -> int:
        return sum(b.numel() for _, b in self.named)

    def broadcast(self, step: int, bits) -> None:
        """Every rank takes rank 0's buffers (after a gradient step)."""
        if not self.named or self.comm.size == 1:
            return
        flat = self._flat()
        result = self.comm.broadcast(flat, root_rank=BROADCAST_ROOT, name=self._name("broadcast"))
        self._write(result)
        nbits = 32 * flat.numel()
        root = self.comm.rank == BROADCAST_ROOT
        bits.record(step, nbits if root else 0, nbits if root else 0, nbits if root else 0,
                    received=0 if root else nbits)

    def average(self, step: int, bits) -> None:
        """Every rank takes the mean of all ranks' buffers (at a model-averaging round)."""
        if not self.named or self.comm.size == 1:
            return
        flat = self._flat()
        total = self.comm.allreduce(flat, name=self._name("average"))
        self.synced = total.div_(self.comm.size)
        self._write(self.synced)
        nbits = 32 * flat.numel()
        bits.record(step, nbits, nbits, nbits, received=ring_share(nbits, self.comm.size))

    def restore_synced(self) -> None:
        """Put back the buffers of the last average (no communication): local steps after it
        moved each rank's own, and the model every rank agrees on is x̂ with these."""
        if self.synced is not None:
            self._write(self.synced)

    def _flat(self) -> torch.Tensor:
        return torch.cat([b.detach().reshape(-1).float() for _, b in self.named])

    @torch.no_grad()
    def _write(self, flat: torch.Tensor) -> None:
        pieces = flat.split([b.numel() for _, b in self.named])
        for (_, buf), piece in zip(self.named, pieces):
            buf.copy_(piece.view_as(buf))

    def _name(self, kind: str) -> str:
        # a fresh name per call: Horovod caches responses by name, and a joined rank replays them
        self._serial += 1
        return f"hvd_qsparse.buffers.{kind}.{self._serial}"
