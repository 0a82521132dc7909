"""A batch sampler over the union of a worker's q chunks (RI-SGD), re-mappable when workers go.

Every worker holds the same number of batches per epoch, K = ⌈max_j |U_j| / B⌉, where U_j is
the union of slot j's chunks and B the batch size: a worker's epoch is a permutation of its
union, fixed by (seed, epoch, slot), cut into K batches whose sizes differ by at most one. So
every sample of the union is drawn exactly once per epoch (none lost, none repeated) and the
workers stay in step for model averaging even when their unions differ by a few samples.

A slot is a worker's place in the original layout (its rank when training started); it stays
with the process across elastic resets, when ranks are renumbered. ``set_workers`` re-maps the
chunks over the live slots (``chunks.assign_chunks``). K only grows on a re-map (it is taken
over the original windows and the current assignment together), so a worker whose chunks did
not change (at most q − 1 lost) goes on with the same permutation from the same position. A
worker that adopts orphaned chunks (q or more lost) draws from its new union for the rest of
the epoch, from the same position: in that one epoch some of its samples may be drawn twice
or not at all; from the next epoch on, every held sample is drawn exactly once again.
"""
import math
from typing import Dict, List, Optional, Sequence

import torch
from torch.utils.data import Sampler

from hvd_qsparse.data.chunks import assign_chunks, split_chunks, window
from hvd_qsparse.validation import check_count
from hvd_qsparse.ops import derive_seed

_FIXED = ("num_chunks", "redundancy", "seed", "batch_size", "non_iid")


class RedundantSampler(Sampler[List[int]]):
    """Mini-batches (lists of sample indices) from the union of this worker's chunks.

    Use it as a ``DataLoader``'s ``batch_sampler``, or iterate it directly. Iteration resumes
    from ``position`` (batches of the current epoch already drawn), which ``state_dict``
    carries, so an elastic restore or a checkpoint continues mid-epoch.

    Args:
        num_samples: size of the training set.
        batch_size: B, the largest batch (batches hold B or fewer samples, see module docstring).
        num_chunks: p, the number of chunks (the number of workers when training starts).
        redundancy: q in [1, p], chunks per worker; q = 1 is plain local SGD's disjoint split.
        slot: this worker's place in [0, p) (its starting rank).
        seed: shared by every worker; fixes the chunks and, with (epoch, slot), the batches.
        labels: one label per sample; when given, the chunks are label-sorted (non-i.i.d.).
    """

    def __init__(self, num_samples: int, batch_size: int, num_chunks: int, redundancy: int = 1, slot: int = 0,
                 seed: int = 0, labels: Optional[torch.Tensor] = None):
        # --- fixed for the whole run ------------------------------------------------------
        self.batch_size = check_count("batch_size", batch_size, 1, None, "B, samples per mini-batch")
        self.num_chunks = check_count("num_chunks", num_chunks, 1, None, "p, chunks of the data set")
        self.redundancy = check_count("redundancy", redundancy, 1, num_chunks, "q, chunks per worker, at most p")
        self.seed = check_count("seed", seed, 0, None, "shared random seed")
        self.non_iid = labels is not None
        self.chunks = split_chunks(num_samples, num_chunks, seed, labels)
        # --- membership: which slots are alive, and who holds what ------------------------
        self.slot = check_count("slot", slot, 0, num_chunks - 1, "this worker's place in the original layout")
        self.alive: List[int] = list(range(num_chunks))
        self.assignment: Dict[int, List[int]] = assign_chunks(self.alive, redundancy, num_chunks)
        # --- progress ---------------------------------------------------------------------
        self.epoch = 0
        self.position = 0

    @property
    def held(self) -> List[int]:
        """The chunks this worker draws from now."""
        return self.assignment[self.slot]

    def union_size(self, chunk_ids: Sequence[int]) -> int:
        return sum(len(self.chunks[c]) for c in chunk_ids)

    def __len__(self) -> int:
        """K, batches per epoch: the same on every worker."""
        windows = (window(s, self.redundancy, self.num_chunks) for s in range(self.num_chunks))
        largest = max(self.union_size(c) for c in [*windows, *self.assignment.values()])
        return math.ceil(largest / self.batch_size)

    def epoch_batches(self, epoch: int) -> List[torch.Tensor]:
        """All K batches of ``epoch`` for this worker (int64 index tensors); no side effects.

        Raises:
            ValueError: this worker holds fewer samples than K (a batch would be empty).
        """
        union = torch.cat([self.chunks[c] for c in self.held])
        if len(union) < len(self):
            raise ValueError(f"batch_size={self.batch_size} is too small: slot {self.slot} holds {len(union)} "
                             f"samples, fewer than the {len(self)} batches per epoch; use a larger batch_size")
        gen = torch.Generator().manual_seed(derive_seed("risgd.batches", self.seed, epoch, self.slot))
        order = union[torch.randperm(len(union), generator=gen)]
        return list(torch.tensor_split(order, len(self)))

    def __iter__(self):
        batches = self.epoch_batches(self.epoch)
        while self.position < len(batches):
            batch = batches[self.position]
            self.position += 1  # counted when handed out; a failed step rolls back to a commit anyway
            yield batch.tolist()

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` from its first batch."""
        self.epoch, self.position = epoch, 0

    def set_workers(self, alive: Sequence[int], slot: Optional[int] = None) -> Dict[int, List[int]]:
        """Re-map the chunks over the live slots (this worker's must be among them).

        Args:
            alive: the live slots.
            slot: this worker's new slot, when it changes (a worker joining an elastic job).

        Returns:
            slot → chunks, for every live slot.
        """
        slot = self.slot if slot is None else slot
        if slot not in alive:
            raise ValueError(f"alive must include this worker's slot {slot}, got {sorted(alive)}")
        self.assignment = assign_chunks(alive, self.redundancy, self.num_chunks)
        self.alive, self.slot = sorted(alive), slot
        return self.assignment

    def state_dict(self) -> dict:
        state = {name: getattr(self, name) for name in _FIXED}
        state.update(epoch=self.epoch, position=self.position, slot=self.slot, alive=list(self.alive))
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore progress and membership; the fixed settings must match this sampler's.

        Raises:
            ValueError: the state was written by a sampler with other fixed settings.
        """
        for name in _FIXED:
            if state[name] != getattr(self, name):
                raise ValueError(f"sampler state has {name}={state[name]!r}, this sampler has {getattr(self, name)!r}")
        self.set_workers(state["alive"], slot=state["slot"])
        self.epoch, self.position = state["epoch"], state["position"]
