"""Which parameters an optimizer wrapper trains, and the names that key their state."""
from typing import Iterable, Optional, Tuple

import torch


def resolve_named_parameters(optimizer: torch.optim.Optimizer,
                             named_parameters: Optional[Iterable[Tuple[str, torch.Tensor]]]):
    """``[(name, param)]`` for every parameter the optimizer updates, in a rank-independent order.

    Names key the error-feedback memories and seeds, so they must be the same on every rank;
    without ``named_parameters`` they are derived from the optimizer's group and position.

    Raises:
        ValueError: entries that are not ``(name, parameter)`` tuples, duplicate names, or
            optimizer parameters missing from ``named_parameters``.
    """
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if named_parameters is None:
        return [(f"group{g}.param{i}", p) for g, group in enumerate(optimizer.param_groups)
                for i, p in enumerate(group["params"])]
    named = list(named_parameters)
    if any(not isinstance(entry, tuple) or len(entry) != 2 for entry in named):
        raise ValueError("named_parameters should be a sequence of tuples (name, parameter), usually "
                         "produced by model.named_parameters()")
    names = [n for n, _ in named]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"named_parameters: parameter names must be unique; duplicates: {', '.join(duplicates)}")
    by_id = {id(p): n for n, p in named}
    missing = [i for i, p in enumerate(params) if id(p) not in by_id]
    if missing:
        raise ValueError(f"named_parameters: {len(missing)} optimizer parameters were not named; pass "
                         "model.named_parameters() for the model whose parameters the optimizer holds")
    return [(by_id[id(p)], p) for p in params]
