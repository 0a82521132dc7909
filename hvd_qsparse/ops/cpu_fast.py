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
The same holds for any integer keys, so rand-k's keys take this path too.
"""
import math
from functools import lru_cache

import torch

from hvd_qsparse.ops.counter_random import random_keys
from hvd_qsparse.ops.reference import TorchOps, magnitude_keys, make_generator, topk_of_keys

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


def sampled_topk_of_keys(keys: torch.Tensor, k: int) -> torch.Tensor:
    """The reference's ``topk_of_keys(keys, k)``, found through a sampled threshold (CPU)."""
    d = keys.numel()
    sample = keys[_sample_positions(d)]
    for attempt in range(ATTEMPTS):
        rank = sample_rank(d, k, attempt)
        if rank >= SAMPLE:
            break
        threshold = torch.kthvalue(sample, SAMPLE - rank + 1).values
        candidates = torch.nonzero(keys >= threshold).reshape(-1)
        if candidates.numel() >= k:
            return candidates[topk_of_keys(keys[candidates], k)]
    return topk_of_keys(keys, k)


def sampled_topk_indices(x: torch.Tensor, k: int) -> torch.Tensor:
    """The reference's ``topk_indices(x, k)``, found through a sampled threshold (CPU)."""
    return sampled_topk_of_keys(magnitude_keys(x), k)


class FastCpuOps(TorchOps):
    """The torch reference with the sampled selection on large CPU tensors (top-k of the
    magnitudes, and rand-k's top-k of its counter-hash keys)."""

    name = "torch-cpu-fast"

    def topk_indices(self, x: torch.Tensor, k: int) -> torch.Tensor:
        if x.is_cuda or x.numel() < MIN_NUMEL or k >= x.numel():
            return super().topk_indices(x, k)
        return sampled_topk_indices(x, k)

    def randk_indices(self, d: int, k: int, seed: int, device: torch.device) -> torch.Tensor:
        if torch.device(device).type != "cpu" or d < MIN_NUMEL or k >= d:
            return super().randk_indices(d, k, seed, device)
        return sampled_topk_of_keys(random_keys(seed, d, device), k)
