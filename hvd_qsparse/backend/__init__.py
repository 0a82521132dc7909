"""The bindings to the ranks: Horovod's collectives on a process set, or torch.distributed's on
a process group, behind one handle; and Horovod's compressor interface."""
from hvd_qsparse.backend.choice import BACKENDS, default_communicator, make_communicator, resolve_backend
from hvd_qsparse.backend.horovod import (REDUCE_OPS, HorovodCommunicator, HorovodCompressorInterface, JoinInProgress,
                                         horovod_initialized, is_horovod_compression, reduce_op_name)
from hvd_qsparse.backend.torch_distributed import RankSet, TorchCommunicator

__all__ = ["BACKENDS", "REDUCE_OPS", "HorovodCommunicator", "HorovodCompressorInterface", "JoinInProgress",
           "default_communicator", "horovod_initialized", "is_horovod_compression", "make_communicator",
           "reduce_op_name", "resolve_backend", "RankSet", "TorchCommunicator"]
