"""A ``torch.optim.Optimizer`` that is a view of the optimizer it wraps, by composition.

As PyTorch's ``PostLocalSGDOptimizer``: ``param_groups``, ``state`` and ``defaults`` are the
wrapped optimizer's own objects, so an LR scheduler, GradScaler or ``hvd.elastic.TorchState``
that changes them changes what the wrapped optimizer uses, and nothing is copied.
"""
import torch


class ComposedOptimizer(torch.optim.Optimizer):
    """The view; subclasses set ``self.optimizer`` and never call ``Optimizer.__init__``."""

    optimizer: torch.optim.Optimizer

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    @param_groups.setter
    def param_groups(self, groups):
        self.optimizer.param_groups = groups

    @property
    def state(self):
        return self.optimizer.state

    @property
    def defaults(self):
        return self.optimizer.defaults

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.optimizer!r})"
