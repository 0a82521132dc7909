"""Horovod elastic state for RI-SGD: model, optimizer wrapper and sampler, committed together.

Used with ``hvd.elastic.run`` under ``horovodrun --gloo --min-np … --max-np …
--host-discovery-script …``. ``commit()`` (at the end of a round, when every replica holds the
same model) copies the model, the wrapper's ``state_dict`` (inner optimizer, x̂, this rank's
memory, step) and the sampler's progress to host memory. When a worker dies, the survivors'
next collective fails; Horovod's ``run`` then calls ``restore`` (back to the commit), re-forms
the ring with the survivors, and calls ``sync`` on every worker, where

1. every worker announces its slot (its place in the original layout); workers without one
   (all of them at the start, a joiner later) take the free slots in rank order;
2. the sampler re-maps the chunks over the live slots (``data.chunks.assign_chunks``): with
   at most q − 1 workers lost nothing moves and every chunk still has a holder;
3. parameters and inner optimizer state come from rank 0 (as ``hvd.elastic.TorchState``), x̂
   is taken again from them, and the step counter and sampler progress are rank 0's.

The bit counter is not rolled back: the bits of steps that were redone were really sent.
"""
import copy
import logging
import os
from typing import List, Optional

try:
    from horovod.common.elastic import ObjectState
except ImportError:  # torch.distributed without Horovod: the registry still imports this module
    class ObjectState:
        """Stands in for Horovod's elastic state where Horovod is not installed."""

        def __init__(self, *args, **kwargs):
            raise RuntimeError("elastic RI-SGD needs Horovod's elastic mode (horovod.common.elastic); "
                               "run launch/setup.sh, which builds Horovod 0.28.1")

from hvd_qsparse.data import holders

log = logging.getLogger("hvd_qsparse.risgd")


def claim_slots(announced: List[Optional[int]], num_chunks: int) -> List[int]:
    """The slot of every rank: a worker keeps its own; those without one take the free slots in
    rank order (so at the start slot = rank).

    Raises:
        ValueError: more workers than chunks.
    """
    free = iter(s for s in range(num_chunks) if s not in announced)
    try:
        return [slot if slot is not None else next(free) for slot in announced]
    except StopIteration:
        raise ValueError(f"{len(announced)} workers but only {num_chunks} chunks: start the job with "
                         f"--chunks >= --max-np (p must not be smaller than the number of workers)") from None


class RiSGDElasticState(ObjectState):
    """What survives a failure: the model, the RI-SGD wrapper and its sampler.

    Args:
        model: the trained module (its parameters are the ones the optimizer updates).
        optimizer: an ``RISGD`` wrapper.
        sampler: the ``RedundantSampler`` the training loop iterates.
        kwargs: further plain Python values to commit and broadcast (``ObjectState``).
    """

    def __init__(self, model, optimizer, sampler, **kwargs):
        if optimizer.local_sgd_state.sharded:
            # Its memories are kept per region of R, and a membership change alters R.
            raise ValueError("exchange='sharded' (--exchange sharded) is not available under elastic training: "
                             "the regions, and the memories kept per region, follow the number of ranks; "
                             "use exchange='auto' or 'allgather'")
        self.model, self.optimizer, self.sampler = model, optimizer, sampler
        self.comm = optimizer.comm  # the ranks Horovod re-forms after a reset
        self.joined = False  # has this process been through a sync, and so owns its slot?
        self.resets = 0
        self._committed = self._snapshot()
        super().__init__(bcast_object=self._broadcast_object, get_rank=self._rank, **kwargs)

    def _broadcast_object(self, obj, root_rank: int = 0, name: Optional[str] = None):
        return self.comm.broadcast_object(obj, root_rank, name)

    def _rank(self) -> int:
        return self.comm.rank

    def _snapshot(self) -> dict:
        return copy.deepcopy({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                              "sampler": self.sampler.state_dict()})

    def save(self) -> None:
        self._committed = self._snapshot()
        super().save()

    def restore(self) -> None:
        live_bits = self.optimizer.bits.state_dict()
        committed = copy.deepcopy(self._committed)
        self.model.load_state_dict(committed["model"])
        self.optimizer.load_state_dict(committed["optimizer"])
        self.optimizer.bits.load_state_dict(live_bits)
        self.sampler.load_state_dict(committed["sampler"])
        log.warning("slot %d: restored the last commit (step %d, epoch %d, batch %d)", self.sampler.slot,
                    self.optimizer.step_count, self.sampler.epoch, self.sampler.position)
        super().restore()

    def reset(self) -> None:
        self.resets += 1
        log.warning("slot %d: reset #%d, Horovod re-initialised: now rank %d of %d", self.sampler.slot,
                    self.resets, self.comm.rank, self.comm.size)

    def sync(self) -> None:
        announced = self.comm.allgather_object((self.sampler.slot if self.joined else None, self.sampler.num_chunks),
                                               name="risgd.slots")
        if len({p for _, p in announced}) != 1:
            raise ValueError(f"workers disagree on the number of chunks {[p for _, p in announced]}: "
                             "start the elastic job with --chunks P (P >= --max-np)")
        live = claim_slots([s for s, _ in announced], self.sampler.num_chunks)
        before = list(self.sampler.alive)
        assignment = self.sampler.set_workers(live, slot=live[self.comm.rank])
        self.joined = True
        self.optimizer.broadcast_state(root_rank=0)
        progress = self.comm.broadcast_object((self.optimizer.step_count, self.sampler.epoch, self.sampler.position),
                                              root_rank=0, name="risgd.progress")
        self.sampler.epoch, self.sampler.position = progress[1], progress[2]
        self.optimizer.on_membership_change(self.sampler.alive, progress[0])
        self._log_membership(before, assignment)
        super().sync()

    def _log_membership(self, before: List[int], assignment: dict) -> None:
        sampler = self.sampler
        log.info("slot %d: rank %d of %d, pid %d, host %s, holds chunks %s", sampler.slot, self.comm.rank, self.comm.size,
                 os.getpid(), os.environ.get("HOROVOD_HOSTNAME", "?"), sampler.held)
        if self.comm.rank != 0:
            return
        lost = sorted(set(before) - set(sampler.alive))
        log.info("chunk map: %d workers, live slots %s, lost slots %s; slot -> chunks %s; holders per chunk %s; "
                 "resuming at step %d (epoch %d, batch %d)", self.comm.size, sampler.alive, lost, assignment,
                 holders(assignment, sampler.num_chunks),
                 self.optimizer.step_count, sampler.epoch, sampler.position)
