"""Which communicator a wrapper gets: ``backend="horovod"``, ``"torch"`` or ``"auto"``.

``auto`` takes Horovod when ``hvd.init()`` has run in this process, else torch.distributed when
a default process group exists (``torchrun`` + ``init_process_group``), else Horovod (whose
error then says what is missing). torch.distributed is imported only when it is chosen.
"""
from hvd_qsparse.backend.horovod import HorovodCommunicator, horovod_initialized

BACKENDS = ("auto", "horovod", "torch")


def _torch_initialized() -> bool:
    import torch.distributed as dist
    return dist.is_available() and dist.is_initialized()


def resolve_backend(backend: str = "auto") -> str:
    """``horovod`` or ``torch`` for ``backend`` (one of ``BACKENDS``).

    Raises:
        ValueError: another value, naming the accepted ones.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend != "auto":
        return backend
    return "horovod" if horovod_initialized() or not _torch_initialized() else "torch"


def make_communicator(backend: str = "auto", group=None):
    """The communicator of ``backend`` over ``group`` (a Horovod process set or a torch process
    group; None: every rank)."""
    if resolve_backend(backend) == "torch":
        from hvd_qsparse.backend.torch_distributed import TorchCommunicator
        return TorchCommunicator(group)
    return HorovodCommunicator(group)


def default_communicator():
    """The communicator over every rank of whichever backend ``auto`` picks."""
    return make_communicator("auto")
