"""The sharded server: rank j serves shard j, so no rank carries more than its share.

Worker pass: one Horovod ``alltoall`` with variable splits sends shard j of every rank's
message to rank j. Server pass: rank j averages its R payloads, applies its memory δ̄_j,
compresses (the algorithm's server step), and one ``allgather`` returns every shard's reply to every rank. With a
compressed size |Q(d)| per message, a rank hands |Q(d)| + |Q(d/R)| to the collectives and
receives 2·(R − 1)·|Q(d/R)| ≈ 2·|Q(d)|·(R − 1)/R from the others: about constant
in R, where an allgather of every rank's whole payload brings (R − 1)·|Q(d)| to each rank.
"""
from typing import Sequence

import torch

from hvd_qsparse.comm.base import Message
from hvd_qsparse.comm.two_pass import ServerRound, TwoPassExchange
from hvd_qsparse.comm.registry import register_exchange
from hvd_qsparse.ops import join_parts


@register_exchange("sharded")
class ShardedServerExchange(TwoPassExchange):
    """DoubleSqueeze's scalable layout: alltoall to the shard servers, allgather of the replies."""

    def run(self, messages: Sequence[Message], name: str) -> ServerRound:
        rank, size = self.comm.rank, self.comm.size
        if len(messages) != size:
            raise ValueError(f"sharded server: expected one message per rank ({size}), got {len(messages)}")
        sizes = self.payload_sizes(messages)
        send = join_parts([m.payload for m in messages])
        received, _ = self.comm.alltoall(send, splits=torch.tensor(sizes, dtype=torch.int32), name=f"{name}.workers")
        mine = sizes[rank]
        payloads = [received[r * mine:(r + 1) * mine] for r in range(size)]
        reply, mean, decoded = self.serve(rank, payloads, messages[rank].ctx)
        reply_buf = join_parts([reply])
        gathered = self.comm.allgather(reply_buf, name=f"{name}.server")
        return ServerRound(
            update=self.decode_replies(gathered, messages, {rank: decoded}), means={rank: mean},
            replies={rank: decoded},
            sent_bytes=send.numel() + reply_buf.numel(),
            received_bytes=received.numel() - mine + gathered.numel() - reply_buf.numel(),
            analytic_bits=self.worker_analytic_bits(messages) + self.compressor.analytic_bits(messages[rank].ctx.numel))
