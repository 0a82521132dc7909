"""Two-pass (worker + server) exchanges: the interface and the shard plan.

Every worker sends its compressed message per shard, the rank serving a shard runs the server
step on the R payloads it received and replies, and every worker receives every reply. What the
server computes is the algorithm's (DoubleSqueeze's rule is ``algorithms.doublesqueeze_server``;
Qsparse-local-SGD's sharded exchange runs the same step on sums), handed in as ``serve``; the
layouts here differ only in who serves what and which collectives carry it:

- The flat vector of d entries is cut into R contiguous shards of near-equal size (the first
  d mod R shards hold one entry more), R = the number of ranks. A worker payload covers one
  shard, so a compressor's d is the shard size (top-k keeps ⌈ratio·d/R⌉ per shard; scaled sign
  has one scale per shard).
- An exchange carries G·R messages: G groups (a fused bucket each) of R regions, message
  g·R + j being region j of group g, served by rank j (``owner``). Its result is one flat
  vector per group, the group's R decoded replies end to end. DoubleSqueeze has G = 1.
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


#: ``serve(shard, payloads, ctx, key) -> Served``: the algorithm's server step for message
#: ``shard`` of the exchange (``key``: the message's name, ``Message.key``).
ServeFn = Callable[[int, Sequence[torch.Tensor], Context, Optional[str]], Served]


def owner(index: int, ranks: int) -> int:
    """The rank that serves message ``index`` of a two-pass exchange: region j of every group
    goes to rank j."""
    return index % ranks


@dataclass
class ServerRound(Pending):
    """What one two-pass exchange produced on this rank (both passes are done at ``start``)."""

    update: torch.Tensor = None                                     # flat fp32: every shard's decoded reply
    means: Dict[int, torch.Tensor] = field(default_factory=dict)    # shard → mean of the workers' messages
    replies: Dict[int, torch.Tensor] = field(default_factory=dict)  # shard → decoded reply it sent
    sent_bytes: int = 0       # buffers handed to the collectives (both passes)
    received_bytes: int = 0   # bytes that arrived from other ranks (both passes)
    analytic_bits: int = 0    # docs/algorithms.md's figure for the payloads this rank handed over
    group_numels: List[int] = field(default_factory=list)  # entries of each group's result

    def wait(self) -> List[torch.Tensor]:
        """One flat vector per group (the whole update when there is one group)."""
        if len(self.group_numels) <= 1:
            return [self.update]
        return list(self.update.split(self.group_numels))


class TwoPassExchange(Exchange):
    """Workers' compressed shards go to their servers; the servers' compressed replies come back.

    Args:
        compressor: the operator of both passes (it decodes the workers' and the replies' payloads).
        comm: the ranks (``HorovodCommunicator``), the global ones by default.
        serve: the server step (``ServeFn``).
    """

    def __init__(self, compressor: Compressor, comm=None, serve: Optional[ServeFn] = None,
                 reply_compressor: Optional[Compressor] = None):
        super().__init__(compressor, comm)
        if serve is None:
            raise ValueError(f"{type(self).__name__} needs serve=, the algorithm's server step")
        self.serve = serve
        #: the server pass's operator (the workers' by default): it sizes and decodes the replies
        self.reply_compressor = reply_compressor or compressor

    def start(self, messages: Sequence[Message], name: str, flag: Optional[int] = None) -> ServerRound:
        """Run both passes (blocking).

        Args:
            messages: this rank's worker payloads, G groups of R regions (``owner``); shapes
                and seeds (the contexts) are the same on every rank.
            name: a collective name, the same on every rank.
            flag: carried by the layouts that can (``carries_flag``); when any rank's is not
                0, the server pass is skipped (no server memory changes) and the update is zero.
        """
        if flag is not None and not self.carries_flag:
            raise ValueError(f"{type(self).__name__} carries no flag: agree before the exchange")
        if len(messages) % self.comm.size:
            raise ValueError(f"{type(self).__name__}: expected R = {self.comm.size} messages per group, got "
                             f"{len(messages)} in all")
        result = self.run(messages, name, flag)
        size = self.comm.size
        result.group_numels = [sum(m.ctx.numel for m in messages[g: g + size]) for g in range(0, len(messages), size)]
        return result

    #: True when ``start(flag=...)`` is accepted
    carries_flag = False

    @abstractmethod
    def run(self, messages: Sequence[Message], name: str, flag: Optional[int] = None) -> ServerRound:
        """Both passes; the ``ServerRound`` of this rank."""

    def payload_sizes(self, messages: Sequence[Message]) -> List[int]:
        """Bytes of each message's worker payload."""
        return [self.compressor.payload_nbytes(m.ctx.numel) for m in messages]

    def reply_sizes(self, messages: Sequence[Message]) -> List[int]:
        """Bytes of each message's reply (the server pass's operator)."""
        return [self.reply_compressor.payload_nbytes(m.ctx.numel) for m in messages]

    def worker_analytic_bits(self, messages: Sequence[Message]) -> int:
        return sum(self.compressor.analytic_bits(m.ctx.numel) for m in messages)

    def reply_analytic_bits(self, messages: Sequence[Message]) -> int:
        return sum(self.reply_compressor.analytic_bits(m.ctx.numel) for m in messages)

    def decode_replies(self, data: torch.Tensor, messages: Sequence[Message], served: Dict[int, torch.Tensor],
                       order: Optional[Sequence[int]] = None) -> torch.Tensor:
        """The flat update from a buffer holding every message's reply, in ``order`` (message
        indices; message order by default); the ones in ``served`` (this rank's own replies,
        decoded by the server step) are taken from there."""
        sizes = self.reply_sizes(messages)
        offsets, offset = {}, 0
        for index in (range(len(messages)) if order is None else order):
            offsets[index] = offset
            offset += sizes[index]
        out = []
        for index, message in enumerate(messages):
            if index in served:
                out.append(served[index])
            else:
                piece = data[offsets[index]: offsets[index] + sizes[index]]
                out.append(self.reply_compressor.decompress(piece, message.ctx).reshape(-1).float())
        return torch.cat(out)
