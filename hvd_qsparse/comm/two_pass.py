"""Two-pass (worker + server) exchanges: the interface and the shard plan.

Every worker sends its compressed message per shard, the rank serving a shard runs the server
step on the R payloads it received and replies, and every worker receives every reply. What the
server computes is the algorithm's (DoubleSqueeze's rule is ``algorithms.doublesqueeze_server``),
handed in as ``serve``; the layouts here differ only in who serves what and which collectives
carry it:

- The flat vector of d entries is cut into R contiguous shards of near-equal size (the first
  d mod R shards hold one entry more), R = the number of ranks. A worker payload covers one
  shard, so a compressor's d is the shard size (top-k keeps ⌈ratio·d/R⌉ per shard; scaled sign
  has one scale per shard).
- The server of shard j gets the R payloads in rank order and the shard's context; it replies
  with the shard's own seed and the rounding-noise stream ``server_stream(j)`` = −1 − j, which
  no worker uses (workers use their rank). Nothing depends on which rank serves, so every
  layout returns bit-identical results, with stochastic compressors too. A server's own reply
  is applied from what it computed, never decoded again.

Accounting (the package's convention): ``sent_bytes`` is the size of the buffers this rank
hands to the collectives as input, the alltoall buffer whole (its own slice included, as a
rank's own payload counts in an allgather) and a broadcast buffer only at the root.
``received_bytes`` counts what arrived from the other ranks, own slices excluded; it is the
figure that shows how a layout scales with R.
"""
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

import torch

from hvd_qsparse.comm.base import Exchange, Message, Pending
from hvd_qsparse.compression import Compressor, Context


def shard_sizes(numel: int, parts: int) -> List[int]:
    """Sizes of ``parts`` contiguous near-equal shards of ``numel`` entries (larger ones first).

    Raises:
        ValueError: fewer entries than shards, or ``parts`` < 1.
    """
    if isinstance(parts, bool) or not isinstance(parts, int) or parts < 1:
        raise ValueError(f"shards: the number of shards must be an integer >= 1, got {parts!r}")
    if numel < parts:
        raise ValueError(f"shards: {numel} entries cannot fill {parts} shards (one per rank); "
                         "train a model with at least as many parameters as ranks")
    base, extra = divmod(int(numel), parts)
    return [base + (1 if j < extra else 0) for j in range(parts)]


def server_stream(shard: int) -> int:
    """The rounding-noise stream of the server pass for ``shard`` (never a rank's stream)."""
    return -1 - shard


class Served(NamedTuple):
    """What the server step returns for one shard."""

    payload: torch.Tensor   # the reply to send
    mean: torch.Tensor      # the workers' mean it started from (flat fp32)
    decoded: torch.Tensor   # D(payload), flat fp32, as the server computed it


#: ``serve(shard, payloads, ctx) -> Served``: the algorithm's server step for one shard.
ServeFn = Callable[[int, Sequence[torch.Tensor], Context], Served]


@dataclass
class ServerRound(Pending):
    """What one two-pass exchange produced on this rank (both passes are done at ``start``)."""

    update: torch.Tensor = None                                     # flat fp32: every shard's decoded reply
    means: Dict[int, torch.Tensor] = field(default_factory=dict)    # shard → mean of the workers' messages
    replies: Dict[int, torch.Tensor] = field(default_factory=dict)  # shard → decoded reply it sent
    sent_bytes: int = 0       # buffers handed to the collectives (both passes)
    received_bytes: int = 0   # bytes that arrived from other ranks (both passes)
    analytic_bits: int = 0    # docs/algorithms.md's figure for the payloads this rank handed over

    def wait(self) -> List[torch.Tensor]:
        return [self.update]


class TwoPassExchange(Exchange):
    """Workers' compressed shards go to their servers; the servers' compressed replies come back.

    Args:
        compressor: the operator of both passes (it decodes the workers' and the replies' payloads).
        comm: the ranks (``HorovodCommunicator``), the global ones by default.
        serve: the server step (``ServeFn``).
    """

    def __init__(self, compressor: Compressor, comm=None, serve: Optional[ServeFn] = None):
        super().__init__(compressor, comm)
        if serve is None:
            raise ValueError(f"{type(self).__name__} needs serve=, the algorithm's server step")
        self.serve = serve

    def start(self, messages: Sequence[Message], name: str, flag: Optional[int] = None) -> ServerRound:
        """Run both passes (blocking); ``flag`` is not carried (agree before, ``optim.agreement``).

        Args:
            messages: this rank's worker payloads, one per shard in shard order; shapes and
                seeds (the contexts) are the same on every rank.
            name: a collective name, the same on every rank.
        """
        if flag is not None:
            raise ValueError("two-pass exchanges carry no flag: agree before the exchange")
        return self.run(messages, name)

    @abstractmethod
    def run(self, messages: Sequence[Message], name: str) -> ServerRound:
        """Both passes; the ``ServerRound`` of this rank."""

    def payload_sizes(self, messages: Sequence[Message]) -> List[int]:
        """Bytes of each shard's payload (worker and reply alike: same compressor, same size)."""
        return [self.compressor.payload_nbytes(m.ctx.numel) for m in messages]

    def worker_analytic_bits(self, messages: Sequence[Message]) -> int:
        return sum(self.compressor.analytic_bits(m.ctx.numel) for m in messages)

    def decode_replies(self, data: torch.Tensor, messages: Sequence[Message],
                       served: Dict[int, torch.Tensor]) -> torch.Tensor:
        """The flat update from a buffer holding every shard's reply in shard order; the shards
        in ``served`` (this rank's own replies, decoded by the server step) are taken from it."""
        out, offset = [], 0
        for shard, (message, nbytes) in enumerate(zip(messages, self.payload_sizes(messages))):
            if shard in served:
                out.append(served[shard])
            else:
                out.append(self.compressor.decompress(data[offset: offset + nbytes], message.ctx).reshape(-1).float())
            offset += nbytes
        return torch.cat(out)
