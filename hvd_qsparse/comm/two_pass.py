"""Two-pass (worker + server) exchanges: the interface, the shard plan and the server's step.

DoubleSqueeze (Tang et al., ICML 2019) compresses twice: every worker sends its compressed
message, a server averages what it received, adds its own error-feedback memory δ̄ and
compresses again, and every worker receives the server's reply. The layouts here differ only
in who serves what and which collectives carry it; the arithmetic is shared:

- The flat vector of d entries is cut into R contiguous shards of near-equal size (the first
  d mod R shards hold one entry more), R = the number of ranks. A worker payload covers one
  shard, so a compressor's d is the shard size (top-k keeps ⌈ratio·d/R⌉ per shard; scaled sign
  has one scale per shard).
- The server of shard j decodes the R payloads in rank order, averages, and compresses with the
  shard's own seed (rand-k then keeps the workers' coordinates) and the rounding-noise stream
  −1 − j, which no worker uses (workers use their rank). Nothing depends on which rank serves,
  so every layout returns bit-identical results, with stochastic compressors too.

Accounting (the package's convention): ``sent_bytes`` is the size of the buffers this rank
hands to the collectives as input, the alltoall buffer whole (its own slice included, as a
rank's own payload counts in an allgather) and a broadcast buffer only at the root.
``received_bytes`` counts what arrived from the other ranks, own slices excluded; it is the
figure that shows how a layout scales with R.
"""
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from hvd_qsparse.comm.base import Message, global_communicator
from hvd_qsparse.compression import Compressor, Context
from hvd_qsparse.error_feedback import ErrorFeedback


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


@dataclass
class ServerRound:
    """What one two-pass exchange produced on this rank."""

    update: torch.Tensor                                       # flat fp32: every shard's decoded reply
    means: Dict[int, torch.Tensor] = field(default_factory=dict)    # shard → mean of the workers' messages
    replies: Dict[int, torch.Tensor] = field(default_factory=dict)  # shard → decoded reply it sent
    sent_bytes: int = 0       # buffers handed to the collectives (both passes)
    received_bytes: int = 0   # bytes that arrived from other ranks (both passes)
    analytic_bits: int = 0    # docs/algorithms.md's figure for the payloads this rank handed over


class TwoPassExchange(ABC):
    """Workers' compressed shards go to their servers; the servers' compressed replies come back.

    Args:
        compressor: the operator of both passes.
        server_memory: δ̄ for the shards this rank serves, keyed ``shard{j}``; None runs the
            server pass without memory (compress the mean as it is).
        comm: the ranks (``HorovodCommunicator``), the global ones by default.
    """

    def __init__(self, compressor: Compressor, server_memory: Optional[ErrorFeedback], comm=None):
        self.compressor = compressor
        self.server_memory = server_memory
        self.comm = comm if comm is not None else global_communicator()

    @abstractmethod
    def exchange(self, messages: Sequence[Message], name: str) -> ServerRound:
        """Run both passes.

        Args:
            messages: this rank's worker payloads, one per shard in shard order; shapes and
                seeds (the contexts) are the same on every rank.
            name: a collective name, the same on every rank.
        """

    def serve(self, shard: int, payloads: Sequence[torch.Tensor],
              ctx: Context) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The server step for one shard: v = Q(mean + δ̄), δ̄ ← mean + δ̄ − D(v).

        Returns:
            ``(payload, mean, decoded)``: the reply to send, the workers' mean, D(payload).
        """
        mean = self.compressor.decompress_sum(payloads, ctx) / len(payloads)
        if self.server_memory is None:
            payload, reply_ctx = self.compressor.compress(mean, seed=ctx.seed, stream=server_stream(shard))
            return payload, mean, self.compressor.decompress(payload, reply_ctx).float()
        payload, _, decoded = self.server_memory.compress(f"shard{shard}", mean, self.compressor, seed=ctx.seed,
                                                          stream=server_stream(shard))
        return payload, mean, decoded.float()

    def payload_sizes(self, messages: Sequence[Message]) -> List[int]:
        """Bytes of each shard's payload (worker and reply alike: same compressor, same size)."""
        return [self.compressor.payload_nbytes(m.ctx.numel) for m in messages]

    def worker_analytic_bits(self, messages: Sequence[Message]) -> int:
        return sum(self.compressor.analytic_bits(m.ctx.numel) for m in messages)

    def decode_replies(self, data: torch.Tensor, messages: Sequence[Message]) -> torch.Tensor:
        """The flat update from a buffer holding every shard's reply in shard order."""
        out, offset = [], 0
        for message, nbytes in zip(messages, self.payload_sizes(messages)):
            out.append(self.compressor.decompress(data[offset: offset + nbytes], message.ctx).reshape(-1).float())
            offset += nbytes
        return torch.cat(out)
