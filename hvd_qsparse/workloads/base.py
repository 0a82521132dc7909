"""What the training job needs to know about a workload, whatever the model and data are."""
from abc import ABC, abstractmethod
from typing import Tuple

import torch
from torch import nn
from torch.nn import functional as F

from .data import Split


class Task(ABC):
    """A model, its data and how to score it.

    Attributes:
        name: the workload's name on the command line.
        metric: what ``evaluate`` returns ("accuracy" or "val_loss").
        higher_is_better: whether a larger ``evaluate`` value is better.
    """

    name: str
    metric: str
    higher_is_better: bool

    @abstractmethod
    def build_model(self, seed: int) -> nn.Module:
        """A freshly initialised model; the same ``seed`` gives the same parameters."""

    @abstractmethod
    def splits(self, seed: int) -> Tuple[Split, Split]:
        """(train, test) data, identical on every rank for the same ``seed``."""

    @abstractmethod
    def labels(self, split: Split) -> torch.Tensor:
        """One int64 class label per sample (1-D), for samplers that deal label-sorted chunks."""

    @abstractmethod
    def _batch_score(self, output: torch.Tensor, y: torch.Tensor) -> Tuple[float, int]:
        """(sum of the metric over the batch, how many terms that sum has)."""

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over every prediction: per sample, or per position for a sequence.

        Args:
            output: logits with the classes last, (B, C) or (B, T, C).
            y: int64 targets shaped like ``output`` without its last dimension.
        """
        return F.cross_entropy(output.reshape(-1, output.shape[-1]), y.reshape(-1))

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: Split, batch_size: int = 512) -> float:
        """The task's metric of ``model`` on ``split``, in batches so memory stays small.

        The model runs in eval mode (BatchNorm uses its running statistics) and is put back in
        the mode it had. Each batch is moved to the model's device, so the split may live on
        the CPU or beside the model.

        Raises:
            ValueError: ``batch_size`` is below 1 or ``split`` is empty.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if len(split) == 0:
            raise ValueError("cannot evaluate on an empty split")
        device = _device_of(model)
        was_training = model.training
        model.eval()
        try:
            total, count = 0.0, 0
            for start in range(0, len(split), batch_size):
                x = split.x[start:start + batch_size].to(device)
                y = split.y[start:start + batch_size].to(device)
                batch_total, batch_count = self._batch_score(model(x), y)
                total, count = total + batch_total, count + batch_count
        finally:
            model.train(was_training)
        return total / count


def _device_of(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")
