"""Exchanges of compressed payloads over Horovod or torch.distributed, and one-sided MPI windows."""
from hvd_qsparse.comm.accounting import BitCounter, StepBits, ring_share
from hvd_qsparse.comm.allgather import AllgatherExchange
from hvd_qsparse.comm.allreduce import AllreduceExchange
from hvd_qsparse.comm.base import Exchange, Finished, Message, Pending
from hvd_qsparse.comm.cost_model import Link, Round as RoundShape, choose as choose_exchange, predict, round_shape
from hvd_qsparse.comm.decoded_allreduce import DecodedAllreduceExchange
from hvd_qsparse.comm.link import measure_link
from hvd_qsparse.backend import (HorovodCommunicator, JoinInProgress, is_horovod_compression, make_communicator,
                                 reduce_op_name, resolve_backend)
from hvd_qsparse.comm.layout import FlatLayout, Slot
from hvd_qsparse.comm.parameter_server import ParameterServerExchange
from hvd_qsparse.comm.progress import ProgressThread
from hvd_qsparse.comm.registry import available_exchanges, make_exchange, register_exchange
from hvd_qsparse.comm.sharded_server import ShardedServerExchange
from hvd_qsparse.comm.sparse_or_dense import SparseOrDenseExchange
from hvd_qsparse.comm.two_pass import Served, ServerRound, TwoPassExchange, server_stream, shard_sizes
from hvd_qsparse.comm.window import OneSidedUnavailableError, Window

__all__ = ["HorovodCommunicator", "JoinInProgress", "is_horovod_compression", "make_communicator", "reduce_op_name",
           "resolve_backend", "BitCounter", "StepBits", "AllgatherExchange", "AllreduceExchange", "Exchange", "Message", "Pending"]
__all__ += ["ParameterServerExchange", "ServerRound", "ShardedServerExchange", "SparseOrDenseExchange", "TwoPassExchange",
            "shard_sizes"]
__all__ += ["Finished", "Served", "available_exchanges", "make_exchange", "register_exchange", "server_stream"]
__all__ += ["ring_share", "Link", "RoundShape", "choose_exchange", "predict", "round_shape", "DecodedAllreduceExchange", "measure_link"]
__all__ += ["FlatLayout", "OneSidedUnavailableError", "ProgressThread", "Slot", "Window"]
