r"""The outer optimizer of local SGD: the averaged model change applied through a torch optimizer.

Local SGD (and Qsparse-local-SGD) ends a round of H local steps with x̂ ← x̂ − Δ̄, where
Δ̄ = (1/R) Σ_r g̃^(r) is the mean of the decoded model changes g̃^(r) ≈ x̂ − x^(r). DiLoCo
(Douillard et al., arXiv 2311.08105) treats Δ̄ as a pseudo-gradient of x̂ and applies it through
an outer optimizer, SGD with Nesterov momentum μ and learning rate η_out:

.. math::
    b \leftarrow \mu\, b + \bar\Delta,\qquad
    \hat x \leftarrow \hat x - \eta_{out}\,(\bar\Delta + \mu\, b),

torch's ``SGD(nesterov=True)``. With η_out = 1 and μ = 0 it is the plain rule x̂ ← x̂ − Δ̄.

Any torch optimizer may take that role. It runs over its own fp32 copies of x̂ (x̂ is copied in,
Δ̄ set as ``.grad``, one ``step()``, the result copied out), so x̂ may be replaced freely (reset
after warm-up, loaded from a checkpoint) without rebinding the optimizer; the two copies per
round are cheap against a round's exchange. Tensors without a pseudo-gradient this round (the
other fragments of a streaming sync) have ``.grad`` None, which torch's optimizers skip.
"""
import copy
import functools
from typing import Callable, Dict, Optional

import torch

from hvd_qsparse.validation import check_choice, check_fraction, check_positive

#: ``--outer``: ``none`` is x̂ ← x̂ − Δ̄ with no optimizer; ``sgd`` heavy-ball, ``nesterov`` DiLoCo's
OUTERS = ("none", "sgd", "nesterov")


def outer_factory(kind: str, lr: float = 0.7, momentum: float = 0.9) -> Optional[Callable]:
    """``params -> torch.optim.SGD`` for ``--outer kind`` (None for ``none``).

    Raises:
        ValueError: an unknown kind, lr not > 0 or momentum outside [0, 1), named as the flags.
    """
    check_choice("outer (--outer)", kind, OUTERS)
    lr = check_positive(lr, "outer_lr (--outer-lr)", "the outer optimizer's learning rate")
    momentum = check_fraction(momentum, "outer_momentum (--outer-momentum)", "the outer optimizer's momentum")
    if kind == "none":
        return None
    if kind == "nesterov" and momentum == 0.0:
        raise ValueError("outer_momentum (--outer-momentum) must be > 0 with --outer nesterov (Nesterov "
                         "momentum needs a momentum); use --outer sgd for none")
    return functools.partial(torch.optim.SGD, lr=lr, momentum=momentum, nesterov=kind == "nesterov")


class OuterOptimizer:
    """A torch optimizer stepping x̂ with the averaged model change as its gradient.

    Args:
        factory: ``params -> torch.optim.Optimizer`` (e.g. ``functools.partial(torch.optim.SGD,
            lr=0.7, momentum=0.9, nesterov=True)``); called once, at the first round.
    """

    def __init__(self, factory: Callable):
        if not callable(factory):
            raise TypeError(f"outer_optimizer must be a callable params -> torch.optim.Optimizer, "
                            f"got {type(factory).__name__}")
        self.factory = factory
        self.optimizer: Optional[torch.optim.Optimizer] = None
        self._params: Dict[str, torch.Tensor] = {}
        self._saved: Optional[dict] = None  # a loaded state, applied when the optimizer is built

    def _bind(self, x_hat: Dict[str, torch.Tensor]) -> None:
        if self.optimizer is not None and self._params.keys() == x_hat.keys():
            return
        # New tensors joined x̂ (``add_param_group``): the others keep their optimizer state.
        kept = {} if self.optimizer is None else {n: self.optimizer.state[p] for n, p in self._params.items()
                                                   if p in self.optimizer.state}
        self._params = {n: t.detach().clone().requires_grad_(True) for n, t in x_hat.items()}
        optimizer = self.factory(list(self._params.values()))
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"outer_optimizer's factory must return a torch.optim.Optimizer, "
                            f"got {type(optimizer).__name__}")
        if self._saved is not None:
            optimizer.load_state_dict(self._saved)
            self._saved = None
        for name, state in kept.items():
            if name in self._params:
                optimizer.state[self._params[name]] = state
        self.optimizer = optimizer

    @torch.no_grad()
    def step(self, x_hat: Dict[str, torch.Tensor], changes: Dict[str, torch.Tensor]) -> None:
        """x̂[n] ← the optimizer's step from x̂[n] with gradient ``changes[n]`` (Δ̄), for the
        names in ``changes``; the other entries of x̂ and their optimizer state stay as they are."""
        self._bind(x_hat)
        for name, change in changes.items():
            param = self._params[name]
            param.copy_(x_hat[name])
            param.grad = change.reshape(param.shape).float()
        self.optimizer.step()
        for name in changes:
            param = self._params[name]
            x_hat[name].copy_(param)
            param.grad = None

    @property
    def kind(self) -> str:
        """The optimizer's class name (checkpoints refuse another)."""
        if self.optimizer is not None:
            return type(self.optimizer).__name__
        target = getattr(self.factory, "func", self.factory)
        return getattr(target, "__name__", type(target).__name__)

    def state_dict(self) -> dict:
        """A copy (torch's own ``state_dict`` shares the momentum buffers it will go on changing)."""
        state = self.optimizer.state_dict() if self.optimizer is not None else self._saved
        return {"kind": self.kind, "state": copy.deepcopy(state)}

    def load_state_dict(self, state: dict) -> None:
        """Restore a state saved by ``state_dict`` (applied at the next round if not yet built).

        Raises:
            ValueError: it was saved by another kind of optimizer.
        """
        if state["kind"] != self.kind:
            raise ValueError(f"checkpoint was written with outer optimizer {state['kind']}, this optimizer "
                             f"uses {self.kind}")
        if state["state"] is None:
            self.optimizer, self._params, self._saved = None, {}, None
        elif self.optimizer is not None:
            self.optimizer.load_state_dict(copy.deepcopy(state["state"]))
        else:
            self._saved = copy.deepcopy(state["state"])

