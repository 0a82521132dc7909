"""The sharded server: rank j serves region j of every group, so no rank carries more than its share.

Worker pass: one Horovod ``alltoall`` with variable splits sends region j of every group of
every rank's messages to rank j. Server pass: rank j runs the algorithm's server step on the R
payloads of each region it owns (``two_pass.owner``), and one ``allgather`` returns every
region's reply to every rank. With a compressed size |Q(d)| per rank, a rank hands
|Q(d)| + |Q(d/R)| to the collectives and receives (R − 1)·|Q(d/R)| in each pass,
≈ 2·|Q(d)|·(R − 1)/R: about constant in R, where an allgather of every rank's whole payload
brings (R − 1)·|Q(d)| to each rank.
"""
from typing import List, Optional, Sequence

import torch

from hvd_qsparse.backend import JoinInProgress
from hvd_qsparse.comm.accounting import ring_share
from hvd_qsparse.comm.allgather import FLAG_BYTES
from hvd_qsparse.comm.base import Message, Pending
from hvd_qsparse.comm.join_fallback import dense_sum
from hvd_qsparse.comm.registry import register_exchange
from hvd_qsparse.comm.two_pass import ServerRound, TwoPassExchange, owner
from hvd_qsparse.ops import join_parts


@register_exchange("sharded")
class ShardedServerExchange(TwoPassExchange):
    """The scalable layout: alltoall to the region owners, allgather of the replies.

    A flag (``start(flag=...)``) rides as 4 bytes at the end of each destination's slice, so
    every rank learns every rank's flag from the alltoall; when one is not 0 the server pass is
    skipped on every rank (owners' memories untouched, the update zero) and the caller decides.
    While a rank has joined (``hvd.join()``), the workers' messages are summed by a dense
    allreduce instead, without the server pass (``comm.join_fallback``).
    """

    carries_flag = True

    def run(self, messages: Sequence[Message], name: str, flag: Optional[int] = None) -> Pending:
        rank, size = self.comm.rank, self.comm.size
        sizes = self.payload_sizes(messages)
        by_owner = [[m for m in range(len(messages)) if owner(m, size) == r] for r in range(size)]
        extra = 0 if flag is None else FLAG_BYTES
        tail = [] if flag is None else [torch.tensor([flag], dtype=torch.int32)]
        send = join_parts([part for row in by_owner for part in [messages[m].payload for m in row] + tail])
        splits = torch.tensor([sum(sizes[m] for m in row) + extra for row in by_owner], dtype=torch.int32)
        try:
            received, _ = self.comm.alltoall(send, splits=splits, name=f"{name}.workers")
        except JoinInProgress:
            return _Joined(self.comm, self.compressor, messages, name, flag)
        mine = by_owner[rank]
        result = ServerRound(sent_bytes=send.numel() - extra * size, analytic_bits=self.worker_analytic_bits(messages)
                             + self.reply_analytic_bits([messages[m] for m in mine]))
        result.control_bytes = extra * size
        result.received_bytes = received.numel() - int(splits[rank]) - extra * (size - 1)
        if flag is not None:
            segment = int(splits[rank])
            result.flags = [int(received[(r + 1) * segment - FLAG_BYTES:(r + 1) * segment].view(torch.int32))
                            for r in range(size)]
            if any(result.flags):
                result.update = torch.zeros(sum(m.ctx.numel for m in messages), device=send.device)
                return result
        reply_buf = join_parts(self._serve_mine(received, messages, mine, sizes, extra, result))
        gathered = self.comm.allgather(reply_buf, name=f"{name}.server")
        result.update = self.decode_replies(gathered, messages, result.replies,
                                            order=[m for row in by_owner for m in row])
        result.sent_bytes += reply_buf.numel()
        result.received_bytes += gathered.numel() - reply_buf.numel()
        return result

    def _serve_mine(self, received: torch.Tensor, messages: Sequence[Message], mine: List[int],
                    sizes: List[int], extra: int, result: ServerRound) -> List[torch.Tensor]:
        """Serve the messages this rank owns from the alltoall's output (rank-major: each
        rank's slices of ``mine`` in order, then ``extra`` flag bytes); their replies, in order."""
        per_rank = sum(sizes[m] for m in mine) + extra
        replies, within = [], 0
        for m in mine:
            payloads = [received[r * per_rank + within: r * per_rank + within + sizes[m]] for r in range(self.comm.size)]
            reply, result.means[m], result.replies[m] = self.serve(m, payloads, messages[m].ctx, messages[m].key)
            replies.append(reply)
            within += sizes[m]
        return replies


class _Joined(Pending):
    """Some rank has joined: this round's sum of the workers' messages through an allreduce."""

    dense = True

    def __init__(self, comm, compressor, messages, name, flag):
        totals, self.flags, self.sent_bytes = dense_sum(comm, compressor, messages, name, flag)
        self.received_bytes = ring_share(self.sent_bytes, comm.size)
        self.control_bytes = 0 if flag is None else 4 * comm.size
        self.analytic_bits = 8 * self.sent_bytes
        self.update = torch.cat(totals) if totals else torch.zeros(0)
        self.group_numels: List[int] = []

    def wait(self) -> List[torch.Tensor]:
        if len(self.group_numels) <= 1:
            return [self.update]
        return list(self.update.split(self.group_numels))
