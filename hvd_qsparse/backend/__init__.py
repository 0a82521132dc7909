"""The binding to Horovod: its collectives on a process set, and its compressor interface."""
from hvd_qsparse.backend.horovod import (REDUCE_OPS, HorovodCommunicator, HorovodCompressorInterface, JoinInProgress,
                                         is_horovod_compression, reduce_op_name)

__all__ = ["REDUCE_OPS", "HorovodCommunicator", "HorovodCompressorInterface", "JoinInProgress",
           "is_horovod_compression", "reduce_op_name"]
