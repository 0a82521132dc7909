"""Index selectors: Top_k (largest magnitudes) and Rand_k (shared-seed uniform choice).

A sparsifier only chooses which k = ⌈ratio·d⌉ coordinates survive; ``SparseCompressor`` sends
them, with the values quantized by any quantizer.
"""
import math
from abc import ABC, abstractmethod
from typing import Optional

import torch

from hvd_qsparse.compression.registry import register_sparsifier
from hvd_qsparse.ops import get_ops
from hvd_qsparse.validation import check_ratio


class Sparsifier(ABC):
    """Chooses k of d coordinates."""

    name = "?"
    sends_indices = True  # False when every rank can recompute the indices from the seed

    def __init__(self, ratio: float = 0.01):
        self.ratio = check_ratio(ratio)

    def params(self) -> dict:
        return {"ratio": self.ratio}

    def k(self, d: int) -> int:
        """Coordinates kept out of ``d`` (at least one)."""
        # round() first: 0.07 * 100 is 7.000000000000001 in floating point, and k must be 7.
        return min(d, max(1, math.ceil(round(self.ratio * d, 6))))

    @abstractmethod
    def select(self, flat: torch.Tensor, seed: Optional[int]) -> torch.Tensor:
        """Ascending int64 indices of the kept coordinates of ``flat``."""

    def indices_from_seed(self, d: int, seed: Optional[int], device) -> torch.Tensor:
        """The indices a decoder recomputes when they are not sent."""
        raise ValueError(f"sparsifier {self.name!r} sends its indices; they cannot be recomputed")


@register_sparsifier("topk")
class TopK(Sparsifier):
    """Top_k: the k entries of largest |x| (ties to the lowest index)."""

    def select(self, flat: torch.Tensor, seed: Optional[int]) -> torch.Tensor:
        return get_ops(flat).topk_indices(flat, self.k(flat.numel()))


@register_sparsifier("randk")
class RandK(Sparsifier):
    """Rand_k: k coordinates uniformly without replacement, drawn from a seed all ranks share
    (derived from the step and the tensor name), so the indices are never sent."""

    sends_indices = False

    def select(self, flat: torch.Tensor, seed: Optional[int]) -> torch.Tensor:
        return self.indices_from_seed(flat.numel(), seed, flat.device)

    def indices_from_seed(self, d: int, seed: Optional[int], device) -> torch.Tensor:
        if seed is None:
            raise ValueError("compressor 'randk' needs seed=<int> shared by all ranks "
                             "(the optimizer derives one from the step and tensor name)")
        return get_ops(torch.empty(0, device=device)).randk_indices(d, self.k(d), seed, device)
