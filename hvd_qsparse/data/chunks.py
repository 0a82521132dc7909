r"""RI-SGD's data placement: p chunks, q of them per worker, and re-mapping when workers go.

The training set is split once into p chunks D_0 … D_{p−1} (p = the number of workers when
training starts). Worker slot j holds the window of q chunks D_j, D_{j+1}, …, D_{j+q−1}
(indices mod p), so every chunk is held by exactly q slots (Haddadpour et al., ICML 2019).

When the set of live slots changes, ``assign_chunks`` re-maps: every live slot keeps its own
window (no data moves: with at most q − 1 slots lost every chunk still has a live holder, which
is the point of the redundancy), and a chunk that no live slot holds any more (q or more lost)
is adopted by the live slot holding the fewest chunks (ties: the nearest slot before the chunk,
cyclically), so every chunk is held by at least one live worker whatever is lost.

Pure functions of integers and tensors: no Horovod, no MPI.
"""
from typing import Dict, List, Optional, Sequence

import torch

from hvd_qsparse.ops import derive_seed
from hvd_qsparse.validation import check_count


def split_chunks(num_samples: int, num_chunks: int, seed: int = 0,
                 labels: Optional[torch.Tensor] = None) -> List[torch.Tensor]:
    """Split ``range(num_samples)`` into ``num_chunks`` disjoint chunks (sizes differ by at most 1).

    Args:
        num_samples: size of the training set.
        num_chunks: p.
        seed: fixes the shuffle, so every rank builds the same chunks.
        labels: when given, the split is non-i.i.d.: samples are sorted by label (shuffled
            within a label) before cutting, so each chunk holds few classes.

    Returns:
        p int64 tensors of sample indices.
    """
    check_count("num_chunks", num_chunks, 1, None, "p, chunks of the data set")
    check_count("num_samples", num_samples, num_chunks, None, "at least one sample per chunk")
    gen = torch.Generator().manual_seed(derive_seed("risgd.chunks", seed))
    order = torch.randperm(num_samples, generator=gen)
    if labels is not None:
        labels = torch.as_tensor(labels)
        if labels.shape != (num_samples,):
            raise ValueError(f"labels must have shape ({num_samples},) (one per sample), got {tuple(labels.shape)}")
        order = order[torch.argsort(labels[order], stable=True)]
    return list(torch.tensor_split(order, num_chunks))


def window(slot: int, redundancy: int, num_chunks: int) -> List[int]:
    """The q chunks slot j holds at the start: j, j+1, …, j+q−1 (mod p)."""
    return [(slot + i) % num_chunks for i in range(redundancy)]


def assign_chunks(alive: Sequence[int], redundancy: int, num_chunks: int) -> Dict[int, List[int]]:
    """Chunks per live slot: its own window plus the orphaned chunks it adopts (module docstring).

    Raises:
        ValueError: no live slot, a slot outside [0, p), or a repeated slot.
    """
    check_count("redundancy", redundancy, 1, num_chunks, "q, chunks per worker, at most p")
    alive = sorted(alive)
    if not alive or len(set(alive)) != len(alive) or alive[0] < 0 or alive[-1] >= num_chunks:
        raise ValueError(f"alive must list distinct worker slots in [0, {num_chunks}), at least one; got {alive}")
    held = {slot: window(slot, redundancy, num_chunks) for slot in alive}
    covered = {c for chunks in held.values() for c in chunks}
    for chunk in (c for c in range(num_chunks) if c not in covered):
        adopter = min(alive, key=lambda s: (len(held[s]), (chunk - s) % num_chunks))
        held[adopter].append(chunk)
    return held


def holders(assignment: Dict[int, List[int]], num_chunks: int) -> List[int]:
    """How many live slots hold each chunk (every entry >= 1 after ``assign_chunks``)."""
    counts = [0] * num_chunks
    for chunks in assignment.values():
        for c in chunks:
            counts[c] += 1
    return counts
