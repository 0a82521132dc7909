"""How compressed payloads move between ranks.

An exchange takes, from every rank, one payload per tensor (the same tensors in the same order
on every rank) and returns, on every rank, the fp32 sum over ranks of the decoded payloads.
It starts asynchronously (``start``) so that work can overlap the transfer, and every rank
decodes the same bytes in the same order, so every rank gets bit-identical results.
"""
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch

from hvd_qsparse.backend import default_communicator
from hvd_qsparse.compression import Compressor, Context
from hvd_qsparse.ops import Selection


def global_communicator():
    """The communicator over every rank (Horovod's global process set, or torch.distributed's
    default group when that is the backend in use: ``backend.default_communicator``)."""
    return default_communicator()


@dataclass
class Message:
    """One tensor's contribution: its payload, the context that decodes it and, on the
    sender, what it stands for (an exchange that needs this rank's dense values, such as a
    fallback to an allreduce, takes them from there instead of decoding)."""

    payload: torch.Tensor
    ctx: Context
    selection: Optional[Selection] = None
    #: the name its memory and seed are keyed by (a two-pass server keys its own memory by it)
    key: Optional[str] = None

    def dense(self, compressor: Compressor) -> torch.Tensor:
        """This message's values, flat fp32: from the selection, or decoded when it has none."""
        if self.selection is not None:
            return self.selection.dense(self.ctx.numel)
        return compressor.decompress_sum([self.payload], self.ctx).reshape(-1).float()


class Pending(ABC):
    """An exchange in flight."""

    #: bytes this rank handed to the collective (payload plus framing), i.e. what it sent
    sent_bytes: int = 0
    #: bytes the collective delivered to this rank from the other ranks' buffers
    received_bytes: int = 0
    #: docs/algorithms.md's bits for what this rank handed over, when the exchange knows better
    #: than the sum over its messages (a server's reply, a dense fallback); else None
    analytic_bits: Optional[int] = None
    #: True when the payloads travelled as a dense sum instead (``SparseOrDenseExchange``)
    dense: bool = False
    #: after ``wait``: every rank's flag (``start(flag=...)``), in rank order, or None
    flags: Optional[List[int]] = None
    #: bytes of the flag riding in this rank's buffer (not in ``sent_bytes``)
    control_bytes: int = 0

    @abstractmethod
    def wait(self) -> List[torch.Tensor]:
        """Block until done; the flat fp32 sum over ranks for each message, in order."""


@dataclass
class Finished(Pending):
    """A transfer already done when it is handed over (a one-sided window epoch): its byte
    counts, and nothing left to wait for."""

    sent_bytes: int = 0
    received_bytes: int = 0

    def wait(self) -> List[torch.Tensor]:
        return []


class Exchange(ABC):
    """A collective over compressed payloads."""

    def __init__(self, compressor: Compressor, comm=None):
        self.compressor = compressor
        #: the ranks and collectives (``HorovodCommunicator``; the global one by default)
        self.comm = comm if comm is not None else global_communicator()

    @abstractmethod
    def start(self, messages: Sequence[Message], name: str, flag: Optional[int] = None) -> Pending:
        """Begin exchanging ``messages`` (same tensors, same order on every rank).

        Args:
            flag: a small non-negative int that rides in this rank's buffer (every rank passes
                one or none); after ``wait`` the pending's ``flags`` hold every rank's, so the
                ranks agree on something (``optim.agreement``) without another collective.
        """

    def exchange(self, messages: Sequence[Message], name: str) -> List[torch.Tensor]:
        """``start`` then ``wait``."""
        return self.start(messages, name).wait()
