"""Algorithms by name (``--algorithm``), and ``DistributedOptimizer``, which builds one."""
from typing import Dict

ALGORITHMS: Dict[str, type] = {}


def register_algorithm(name: str):
    """Class decorator: make an optimizer wrapper available as ``--algorithm name``."""
    def decorate(cls):
        if name in ALGORITHMS:
            raise ValueError(f"algorithm {name!r} is already registered")
        cls.algorithm = name
        ALGORITHMS[name] = cls
        return cls
    return decorate


def available_algorithms():
    """Every accepted ``--algorithm`` name."""
    return list(ALGORITHMS)


def algorithm_class(name: str) -> type:
    """The optimizer wrapper registered as ``name``.

    Raises:
        ValueError: an unknown name (the message lists the accepted ones).
    """
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; accepted: {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name]


def DistributedOptimizer(optimizer, named_parameters=None, algorithm: str = "qsparse", **kwargs):  # noqa: N802
    """Wrap ``optimizer`` for communication-efficient data-parallel training.

    Named like Horovod's ``hvd.DistributedOptimizer``, which it replaces. ``kwargs`` go to the
    algorithm (for ``qsparse``: ``compressor``, ``ratio``, ``levels``, ``local_steps``,
    ``warmup_steps``, ``seed``, ``exchange``).

    Raises:
        ValueError: an unknown algorithm (the message lists the accepted ones) or bad arguments.
    """
    return algorithm_class(algorithm)(optimizer, named_parameters=named_parameters, **kwargs)
