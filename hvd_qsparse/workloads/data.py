"""Data the training job uses: real data shipped inside scikit-learn (no download)."""
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Split:
    """Features and labels as tensors."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device) -> "Split":
        """A new Split with both tensors on ``device`` (this one is left as it is)."""
        return Split(self.x.to(device), self.y.to(device))


def load_digits_split(test_fraction: float = 0.2, seed: int = 0):
    """scikit-learn's 8×8 digits (1797 images, 10 classes), standardized, split train/test.

    The split and the scaling depend only on ``seed``, so every rank builds the same sets.
    """
    from sklearn.datasets import load_digits
    data = load_digits()
    x = data.data.astype(np.float32) / 16.0
    y = data.target.astype(np.int64)
    order = np.random.RandomState(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = order[:n_test], order[n_test:]
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6
    x = (x - mean) / std
    return (Split(torch.from_numpy(x[train]), torch.from_numpy(y[train])),
            Split(torch.from_numpy(x[test]), torch.from_numpy(y[test])))


def shard_batches(n: int, rank: int, size: int, batch_size: int, seed: int, epoch: int):
    """This rank's mini-batch index lists for one epoch: a permutation fixed by (seed, epoch),
    dealt round-robin to ranks, so ranks see disjoint data and every rank has the same number of
    batches (the tail that does not fill a batch on every rank is dropped)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100003 + epoch))
    mine = order[rank::size][: n // size]
    steps = len(mine) // batch_size
    return [mine[i * batch_size:(i + 1) * batch_size] for i in range(steps)]
