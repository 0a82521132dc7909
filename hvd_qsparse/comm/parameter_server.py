"""The parameter-server layout of the DoubleSqueeze paper: rank 0 serves every shard.

Worker pass: every rank's whole message goes to rank 0 (a Horovod ``alltoall`` whose splits
send everything to rank 0, i.e. a gather). Server pass: rank 0 averages each shard, applies its
memory δ̄ and compresses; a ``broadcast`` returns the replies. Rank 0 receives
(R − 1)·|Q(d)| and hands |Q(d)| twice; the others hand |Q(d)| and receive |Q(d)|. Rank 0's load
grows with R: this layout is here for comparison with the sharded one, and gives the same
result.
"""
from typing import Sequence

import torch

from hvd_qsparse.comm.base import Message
from hvd_qsparse.comm.two_pass import ServerRound, TwoPassExchange
from hvd_qsparse.comm.registry import register_exchange
from hvd_qsparse.ops import join_parts

ROOT = 0


@register_exchange("ps")
class ParameterServerExchange(TwoPassExchange):
    """Gather to rank 0, serve every shard there, broadcast the replies."""

    def run(self, messages: Sequence[Message], name: str, flag=None) -> ServerRound:
        rank, size = self.comm.rank, self.comm.size
        send = join_parts([m.payload for m in messages])
        splits = torch.tensor([send.numel() if r == ROOT else 0 for r in range(size)], dtype=torch.int32)
        received, _ = self.comm.alltoall(send, splits=splits, name=f"{name}.workers")
        result = ServerRound(update=torch.empty(0, device=send.device), sent_bytes=send.numel(),
                             analytic_bits=self.worker_analytic_bits(messages))
        if rank == ROOT:
            reply_buf = self._serve_all(received.view(size, send.numel()), messages, result)
            result.sent_bytes += reply_buf.numel()
            result.received_bytes = received.numel() - send.numel()
            result.analytic_bits += self.reply_analytic_bits(messages)
        else:
            reply_buf = torch.zeros(sum(self.reply_sizes(messages)), dtype=torch.uint8, device=send.device)
            result.received_bytes = reply_buf.numel()
        reply_buf = self.comm.broadcast(reply_buf, root_rank=ROOT, name=f"{name}.server")
        result.update = self.decode_replies(reply_buf, messages, result.replies)
        return result

    def _serve_all(self, per_rank: torch.Tensor, messages, result: ServerRound) -> torch.Tensor:
        """Serve every shard from the gathered messages (one row per rank); the joined replies."""
        replies, offset = [], 0
        for shard, (message, nbytes) in enumerate(zip(messages, self.payload_sizes(messages))):
            payloads = [row[offset: offset + nbytes] for row in per_rank]
            reply, result.means[shard], result.replies[shard] = self.serve(shard, payloads, message.ctx, message.key)
            replies.append(reply)
            offset += nbytes
        return join_parts(replies)
