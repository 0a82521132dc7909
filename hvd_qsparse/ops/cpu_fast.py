"""Faster CPU paths for the operations where the torch reference is slow.

Top-k is the one that matters: ``torch.topk`` on a CPU runs a selection over all d magnitudes
(about 0.5 s for 25M entries on one core), while the k largest are a small fraction of them.
``sampled_topk_indices`` guesses a threshold from a fixed random sample of the magnitudes,
keeps the candidates at or above it (two streaming passes), and runs the exact reference
selection on the candidates only. The result is the reference's set exactly: when at least k
candidates survive, the k-th largest magnitude is at least the threshold, so every member of
the top k (ties to the lowest index included) is a candidate, and the candidates keep their
ascending order, so the reference's lowest-index tie rule picks the same entries. When fewer
than k survive, the threshold is lowered and, in the end, the reference runs on everything.
"""
import math
from functools import lru_cache

import torch

from hvd_qsparse.ops.reference import TorchOps, exact_topk_indices, make_generator

#: below this many entries the reference is already fast and sampling does not pay
MIN_NUMEL = 1 << 18
#: magnitudes sampled to estimate the threshold
SAMPLE = 1 << 16
#: threshold guesses before falling back to the reference on the whole tensor
ATTEMPTS = 3


@lru_cache(maxsize=16)
def _sample_positions(d: int) -> torch.Tensor:
    """Fixed pseudo-random positions (seeded by d only): deterministic, and unlike a stride
    not aligned with the row structure of a flattened weight matrix."""
    return torch.randint(0, d, (SAMPLE,), generator=make_generator(d, torch.device("cpu")))


def sample_rank(d: int, k: int, attempt: int) -> int:
    """How many sample magnitudes lie above the threshold guess: the expected k·S/d plus four
    standard deviations, doubled on every retry."""
    expected = k * SAMPLE / d
    return min(SAMPLE, int(math.ceil((expected + 4 * math.sqrt(expected) + 1) * 2 ** attempt)))


def sampled_topk_indices(x: torch.Tensor, k: int) -> torch.Tensor:
    """The reference's ``topk_indices(x, k)``, found through a sampled threshold (CPU)."""
    d = x.numel()
    sample = x[_sample_positions(d)].abs()
    for attempt in range(ATTEMPTS):
        rank = sample_rank(d, k, attempt)
        if rank >= SAMPLE:
            break
        threshold = torch.kthvalue(sample, SAMPLE - rank + 1).values
        candidates = torch.nonzero(x.abs() >= threshold).reshape(-1)
        if candidates.numel() >= k:
            return candidates[exact_topk_indices(x[candidates], k)]
    return exact_topk_indices(x, k)


class FastCpuOps(TorchOps):
    """The torch reference with the sampled top-k on large CPU tensors."""

    name = "torch-cpu-fast"

    def topk_indices(self, x: torch.Tensor, k: int) -> torch.Tensor:
        if x.is_cuda or x.numel() < MIN_NUMEL or k >= x.numel():
            return super().topk_indices(x, k)
        return sampled_topk_indices(x, k)
