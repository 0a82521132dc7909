"""Exchanges of compressed payloads over Horovod."""
from hvd_qsparse.comm.accounting import BitCounter, StepBits
from hvd_qsparse.comm.allgather import AllgatherExchange
from hvd_qsparse.comm.allreduce import AllreduceExchange
from hvd_qsparse.comm.base import Exchange, Message, Pending

__all__ = ["BitCounter", "StepBits", "AllgatherExchange", "AllreduceExchange", "Exchange", "Message", "Pending"]
