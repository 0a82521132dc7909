"""The optimizer wrapper every algorithm builds on (composition, as PostLocalSGDOptimizer).

It holds the user's torch optimizer, forwards the usual habits (``param_groups``,
``zero_grad``, ``state``), and keeps the algorithm's own state in a separate object so that
``state_dict()`` carries both. Subclasses (one per algorithm) implement ``step``.
"""
from abc import ABC, abstractmethod
from typing import Iterable, List, Optional, Tuple

import horovod.torch as hvd
import torch

from hvd_qsparse.optim.timing import StepTimer


def resolve_named_parameters(optimizer: torch.optim.Optimizer,
                             named_parameters: Optional[Iterable[Tuple[str, torch.Tensor]]]):
    """``[(name, param)]`` for every parameter the optimizer updates, in a rank-independent order.

    Names key the error-feedback memories and seeds, so they must be the same on every rank;
    without ``named_parameters`` they are derived from the optimizer's group and position.

    Raises:
        ValueError: duplicate names, or optimizer parameters missing from ``named_parameters``.
    """
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if named_parameters is None:
        return [(f"group{g}.param{i}", p) for g, group in enumerate(optimizer.param_groups)
                for i, p in enumerate(group["params"])]
    named = list(named_parameters)
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        raise ValueError("named_parameters: parameter names must be unique")
    by_id = {id(p): n for n, p in named}
    missing = [i for i, p in enumerate(params) if id(p) not in by_id]
    if missing:
        raise ValueError(f"named_parameters: {len(missing)} optimizer parameters have no name; pass "
                         "model.named_parameters() for the model whose parameters the optimizer holds")
    return [(by_id[id(p)], p) for p in params]


class WrappedOptimizer(ABC):
    """A torch optimizer plus an algorithm's communication policy.

    Args:
        optimizer: the user's optimizer; it takes the local steps.
        named_parameters: ``model.named_parameters()``; names must agree across ranks.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, named_parameters=None):
        self.optimizer = optimizer
        self.named_params: List[Tuple[str, torch.Tensor]] = [
            (n, p) for n, p in resolve_named_parameters(optimizer, named_parameters) if p.requires_grad]
        #: seconds per phase (``compress``, ``communicate``) of the current step, for metrics
        self.timer = StepTimer()

    # --- the algorithm --------------------------------------------------------------------
    @abstractmethod
    def step(self, closure=None):
        """One training step (local update and, when scheduled, communication)."""

    @property
    @abstractmethod
    def algorithm_state(self):
        """The one object that holds the algorithm's state and hyperparameters (memories, shared
        model, counters, seeds), with ``bits`` (a ``comm.BitCounter``), ``step``,
        ``state_dict()`` and ``load_state_dict()``."""

    def algorithm_state_dict(self) -> dict:
        """The algorithm's state, for checkpoints (``state_dict()['algorithm']``)."""
        return self.algorithm_state.state_dict()

    def load_algorithm_state_dict(self, state: dict) -> None:
        """Restore what ``algorithm_state_dict`` returned."""
        self.algorithm_state.load_state_dict(state)

    @property
    def bits(self):
        """This rank's ``comm.BitCounter``: per-step and total bits sent."""
        return self.algorithm_state.bits

    @property
    def step_count(self) -> int:
        """Steps taken so far."""
        return self.algorithm_state.step

    def load_synchronized_model(self) -> None:
        """Copy the model every rank agrees on into the parameters (for evaluation); a no-op for
        algorithms whose replicas are identical after every step."""

    # --- the training job's flags (each algorithm owns its own) ----------------------------
    @classmethod
    def add_arguments(cls, group) -> None:
        """Add this algorithm's own flags to an ``argparse`` argument group. Flags several
        algorithms share (``--compressor``, ``--ratio``, ``--levels``, ``--local-steps``,
        ``--warmup-steps``, ``--seed``) belong to the job."""

    @classmethod
    def options_from_args(cls, args) -> dict:
        """Constructor keyword arguments from the parsed flags.

        Raises:
            ValueError: a bad value or combination, naming the flag and the accepted values
                (the job turns it into a usage error before any rank trains).
        """
        return {}

    # --- torch.optim.Optimizer habits -----------------------------------------------------
    @property
    def param_groups(self):
        return self.optimizer.param_groups

    @property
    def state(self):
        return self.optimizer.state

    @property
    def defaults(self):
        return self.optimizer.defaults

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        """The wrapped optimizer's state and the algorithm's, which differs per rank (memories):
        save one file per rank to resume exactly."""
        return {"optimizer": self.optimizer.state_dict(), "algorithm": self.algorithm_state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.load_algorithm_state_dict(state["algorithm"])

    def broadcast_state(self, root_rank: int = 0) -> None:
        """Make every rank start from ``root_rank``'s parameters and optimizer state.

        Uses ``hvd.broadcast_parameters`` and ``hvd.broadcast_object`` rather than
        ``hvd.broadcast_optimizer_state``, which takes a zero-gradient step to create missing
        state and so moves parameters when weight decay is set.
        """
        hvd.broadcast_parameters(dict(self.named_params), root_rank=root_rank)
        opt_state = hvd.broadcast_object(self.optimizer.state_dict(), root_rank=root_rank,
                                         name="hvd_qsparse.optimizer_state")
        if hvd.rank() != root_rank:
            self.optimizer.load_state_dict(opt_state)

    def flat_numel(self) -> int:
        """Number of trained entries, d."""
        return sum(p.numel() for _, p in self.named_params)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.optimizer!r})"
