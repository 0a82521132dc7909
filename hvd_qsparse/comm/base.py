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

from hvd_qsparse.compression import Compressor, Context


def global_communicator():
    """The communicator over every rank (imported here so that this module needs no Horovod)."""
    from hvd_qsparse.comm.communicator import HorovodCommunicator
    return HorovodCommunicator()


@dataclass
class Message:
    """One tensor's contribution: its payload and the context that decodes it."""

    payload: torch.Tensor
    ctx: Context


class Pending(ABC):
    """An exchange in flight."""

    #: bytes this rank handed to the collective (payload plus framing), i.e. what it sent
    sent_bytes: int = 0
    #: True when the payloads travelled as a dense sum instead (``SparseOrDenseExchange``)
    dense: bool = False
    #: after ``wait``: every rank's flag (``start(flag=...)``), in rank order, or None
    flags: Optional[List[int]] = None
    #: bytes of the flag riding in this rank's buffer (not in ``sent_bytes``)
    control_bytes: int = 0

    @abstractmethod
    def wait(self) -> List[torch.Tensor]:
        """Block until done; the flat fp32 sum over ranks for each message, in order."""


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
