"""Algorithms by name (``--algorithm``), and ``DistributedOptimizer``, which builds one.

A decorator next to each class fills the table; ``discover`` imports every module of
``hvd_qsparse.algorithms``, so a new algorithm is one new module there.
"""
from typing import Dict

from hvd_qsparse.discovery import import_all, registering

ALGORITHMS: Dict[str, type] = {}


def register_algorithm(name: str):
    """Class decorator: make an optimizer wrapper available as ``--algorithm name``."""
    refused = f"algorithm {name!r} is already registered" if name in ALGORITHMS else None
    return registering(ALGORITHMS, "algorithm", name, refused)


def discover() -> None:
    """Import every module of ``hvd_qsparse.algorithms``, so each decorated class is in the table."""
    import_all("hvd_qsparse.algorithms")


def available_algorithms():
    """Every accepted ``--algorithm`` name."""
    discover()
    return list(ALGORITHMS)


def algorithm_class(name: str) -> type:
    """The optimizer wrapper registered as ``name``.

    Raises:
        ValueError: an unknown name (the message lists the accepted ones).
    """
    if name not in available_algorithms():
        raise ValueError(f"unknown algorithm {name!r}; accepted: {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name]


def compressor_from_compression(compression):
    """The ``compressor`` for Horovod's ``compression`` keyword: ``hvd.Compression.none``/``.fp16``,
    a registered compressor name, or an hvd_qsparse ``Compressor``.

    Raises:
        ValueError: anything else, naming the keyword and what it accepts.
    """
    from hvd_qsparse.comm import is_horovod_compression
    from hvd_qsparse.compression import Compressor
    name = is_horovod_compression(compression)
    if name is not None:
        return name
    if isinstance(compression, (str, Compressor)):
        return compression
    raise ValueError(f"compression must be hvd.Compression.none, hvd.Compression.fp16, a compressor name "
                     f"(python -m hvd_qsparse.cli list) or an hvd_qsparse compressor, got {compression!r}")


def DistributedOptimizer(optimizer, named_parameters=None, compression=None,  # noqa: N802
                         backward_passes_per_step: int = 1, op="average", gradient_predivide_factor: float = 1.0,
                         num_groups: int = 0, groups=None, sparse_as_dense: bool = False, process_set=None,
                         *, algorithm: str = "qsparse", named_buffers=None, backend: str = "auto", **options):
    """Wrap ``optimizer`` for communication-efficient data-parallel training.

    A drop-in for Horovod's ``hvd.DistributedOptimizer``, with its signature and meanings
    (``optim.options`` says what each keyword does here). ``compression`` takes Horovod's
    ``hvd.Compression.none``/``.fp16``, a compressor name or instance (the same as ``compressor=``;
    give one of the two). ``options`` go to the algorithm (for ``qsparse``: ``compressor``,
    ``ratio``, ``levels``, ``local_steps``, ``warmup_steps``, ``seed``, ``exchange``, ``fusion``).
    ``named_buffers=model.named_buffers()`` keeps BatchNorm's statistics equal on every rank
    (``WrappedOptimizer.track_buffers``); without it they stay per rank, as with Horovod's.
    ``backend``: ``"horovod"``, ``"torch"`` (torch.distributed, e.g. under ``torchrun``;
    ``process_set`` is then a torch process group) or ``"auto"`` (Horovod once ``hvd.init()``
    has run, else torch.distributed once its default group exists; ``backend.choice``).

    Raises:
        ValueError: an unknown algorithm (the message lists the accepted ones), a keyword that
            means nothing for the algorithm (naming both and what to use instead), or bad values.
    """
    from hvd_qsparse.optim import HorovodOptions
    cls = algorithm_class(algorithm)
    hvd_options = HorovodOptions.from_horovod(
        num_groups=num_groups, groups=groups, backward_passes_per_step=backward_passes_per_step, op=op,
        gradient_predivide_factor=gradient_predivide_factor, sparse_as_dense=sparse_as_dense,
        process_set=process_set, backend=backend)
    if hvd_options.op == "adasum":
        raise ValueError(f"op=hvd.Adasum does not apply to algorithm {algorithm!r}: Adasum combines "
                         "full-precision gradients pairwise, not compressed payloads; use op=hvd.Average or "
                         "hvd.Sum here, or stock hvd.DistributedOptimizer(op=hvd.Adasum)")
    if compression is not None:
        compressor = compressor_from_compression(compression)
        if "compressor" in options and options["compressor"] != compressor:
            raise ValueError(f"give compression= or compressor=, not both (got {compression!r} and "
                             f"{options['compressor']!r})")
        if getattr(cls, "takes_compressor", True):
            options["compressor"] = compressor
        elif compressor != "none":
            raise ValueError(f"compression={compression!r} does not apply to algorithm {algorithm!r}: it sends "
                             "its own payloads; leave compression at hvd.Compression.none")
    opt = cls(optimizer, named_parameters=named_parameters, options=hvd_options, **options)
    if named_buffers is not None:
        opt.track_buffers(named_buffers)
    return opt
