"""Exchanges of compressed payloads over Horovod."""
from hvd_qsparse.comm.allgather import AllgatherExchange
from hvd_qsparse.comm.allreduce import AllreduceExchange
from hvd_qsparse.comm.base import Exchange, Message, Pending

__all__ = ["AllgatherExchange", "AllreduceExchange", "Exchange", "Message", "Pending"]
