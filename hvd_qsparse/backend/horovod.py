"""The Horovod communicator: the one module that imports ``horovod.torch``.

Every exchange and algorithm talks through one ``HorovodCommunicator`` handed to it, never
through the module-level ``horovod.torch`` world, so a wrapper built with
``process_set=hvd.ProcessSet([0, 2])`` runs its whole algorithm on those ranks: ``rank`` and
``size`` are the process set's, and every collective carries it. Ranks outside the set take
plain local steps, as Horovod's own ``DistributedOptimizer`` does.

It also hands the compressors Horovod's ``Compressor`` interface to subclass, so that our
compressors work in stock ``hvd.DistributedOptimizer(compression=...)``. Where Horovod is not
installed (a GPU box running the kernels' checks) the interface is ``object`` and building a
communicator raises.
"""
import pickle
from typing import Optional

import torch

try:
    import horovod.torch as hvd
    from horovod.torch.compression import Compressor as HorovodCompressorInterface
except ImportError:  # pragma: no cover - the compressors and ops still run without Horovod
    hvd = None
    HorovodCompressorInterface = object

#: Horovod's reduce operations by the names the wrappers use (the names themselves without
#: Horovod, so that ``op="average"`` still means something to the torch.distributed backend).
REDUCE_NAMES = ("average", "sum", "adasum", "min", "max")
REDUCE_OPS = ({name: name for name in REDUCE_NAMES} if hvd is None else
              {"average": hvd.Average, "sum": hvd.Sum, "adasum": hvd.Adasum, "min": hvd.Min, "max": hvd.Max})


def horovod_initialized() -> bool:
    """True when Horovod is installed and ``hvd.init()`` has run in this process."""
    return hvd is not None and bool(hvd.is_initialized())


class JoinInProgress(RuntimeError):
    """An allgather or alltoall met a rank that has called ``hvd.join()``: Horovod runs only
    allreduces then (joined ranks contribute zeros), so the exchange must fall back to one."""


def _raise_join(error: Exception) -> None:
    if "not supported with Join" in str(error):
        raise JoinInProgress(str(error)) from error


def reduce_op_name(op) -> str:
    """``"average"``, ``"sum"`` ... for Horovod's ``hvd.Average``, ``hvd.Sum`` ... (or a name).

    Raises:
        ValueError: neither one of Horovod's reduce operations nor one of their names.
    """
    if isinstance(op, str) and op.lower() in REDUCE_OPS:
        return op.lower()
    for name, value in REDUCE_OPS.items():
        if op is value or (not isinstance(op, (str, bool)) and op == value):
            return name
    raise ValueError(f"op must be hvd.Average, hvd.Sum or hvd.Adasum (or their names), got {op!r}")


def is_horovod_compression(value) -> Optional[str]:
    """The hvd_qsparse compressor name for Horovod's own ``hvd.Compression.none``/``.fp16``
    (the classes or instances of them), else None."""
    if hvd is None:
        return None
    for name in ("none", "fp16"):
        cls = getattr(hvd.Compression, name)
        if value is cls or type(value) is cls:
            return name
    return None


class HorovodCommunicator:
    """Horovod's collectives over one process set (the global one by default).

    Args:
        process_set: a ``hvd.ProcessSet`` (registered, as Horovod requires) or None for all ranks.
    """

    def __init__(self, process_set=None):
        if hvd is None:
            raise RuntimeError("hvd_qsparse: Horovod is not installed; run launch/setup.sh (it builds Horovod 0.28.1)")
        self.process_set = hvd.global_process_set if process_set is None else process_set

    # --- who -----------------------------------------------------------------------------
    @property
    def rank(self) -> int:
        """This process's rank within the set (-1 outside it)."""
        return self.process_set.rank() if self.included else -1

    @property
    def size(self) -> int:
        """Ranks in the set."""
        return self.process_set.size()

    @property
    def included(self) -> bool:
        """True when this process belongs to the set."""
        return bool(self.process_set.included())

    @staticmethod
    def mpi_enabled() -> bool:
        """True when Horovod runs on MPI (``mpirun``, ``horovodrun`` without ``--gloo``)."""
        return bool(hvd.mpi_enabled())

    @property
    def is_global(self) -> bool:
        return self.process_set.process_set_id == hvd.global_process_set.process_set_id

    # --- collectives (asynchronous ones return a handle for ``synchronize``) ---------------
    def allreduce_async(self, tensor: torch.Tensor, name: str, op: str = "sum", prescale: float = 1.0,
                        postscale: float = 1.0):
        return hvd.allreduce_async(tensor, name=name, op=REDUCE_OPS[op], prescale_factor=prescale,
                                   postscale_factor=postscale, process_set=self.process_set)

    def allreduce(self, tensor: torch.Tensor, name: str, op: str = "sum") -> torch.Tensor:
        return hvd.allreduce(tensor, name=name, op=REDUCE_OPS[op], process_set=self.process_set)

    def allgather_async(self, tensor: torch.Tensor, name: str):
        return hvd.allgather_async(tensor, name=name, process_set=self.process_set)

    def allgather(self, tensor: torch.Tensor, name: str) -> torch.Tensor:
        try:
            return hvd.allgather(tensor, name=name, process_set=self.process_set)
        except hvd.HorovodInternalError as error:
            _raise_join(error)
            raise

    def alltoall(self, tensor: torch.Tensor, splits: torch.Tensor, name: str):
        try:
            return hvd.alltoall(tensor, splits=splits, name=name, process_set=self.process_set)
        except hvd.HorovodInternalError as error:
            _raise_join(error)
            raise

    def broadcast(self, tensor: torch.Tensor, root_rank: int, name: str) -> torch.Tensor:
        return hvd.broadcast(tensor, root_rank=root_rank, name=name, process_set=self.process_set)

    def broadcast_object(self, obj, root_rank: int, name: str):
        return hvd.broadcast_object(obj, root_rank=root_rank, name=name, process_set=self.process_set)

    def allgather_object(self, obj, name: str) -> list:
        """Every rank's ``obj`` (pickled), in rank order; Horovod's own has no process set."""
        data = torch.frombuffer(bytearray(pickle.dumps(obj)), dtype=torch.uint8)
        sizes = self.allgather(torch.tensor([data.numel()], dtype=torch.int64), name=f"{name}.sizes").tolist()
        gathered = self.allgather(data, name=f"{name}.data")
        return [pickle.loads(chunk.numpy().tobytes()) for chunk in gathered.split(sizes)]

    @staticmethod
    def synchronize(handle) -> torch.Tensor:
        """Wait for ``handle``; ``JoinInProgress`` when Horovod refused it because of ``hvd.join()``
        (it says so to every rank that has not joined, and stays usable)."""
        try:
            return hvd.synchronize(handle)
        except hvd.HorovodInternalError as error:
            _raise_join(error)
            raise

    def __repr__(self) -> str:
        return f"HorovodCommunicator(rank={self.rank}, size={self.size})"
