"""Variable-size sparse payloads, or a dense allreduce when they would move more bytes.

Sparse (index, value) payloads gathered to every rank cost, on the wire, each payload times
R − 1 (every other rank receives it); a ring allreduce of the dense fp32 sum costs
2·(R − 1)·4d bytes in all. When the ranks' payloads together exceed ``DENSE_FACTOR``·4d bytes
(two dense vectors), the allgather would move more than the allreduce, so every rank decodes its
own payloads and the sum is allreduced instead. GD-SEC with mini-batches is the case in point:
sampling noise keeps most entries above the threshold, and (index, value) pairs are twice the
size of the values alone. SparCML (Renggli et al., SC 2019) switches between sparse and dense
representations on the same ground.

The choice needs everyone's payload sizes, so they travel first (a small allgather, counted in
the bits like ``AllgatherExchange(fixed_size=False)``'s); every rank then makes the same choice
from the same numbers. Either path returns, on every rank, bit-identical sums.
"""
from typing import List, Sequence

import torch

from hvd_qsparse.comm.accounting import ring_share
from hvd_qsparse.comm.allgather import AllgatherExchange, payload_sizes
from hvd_qsparse.comm.base import Exchange, Message, Pending
from hvd_qsparse.backend import JoinInProgress
from hvd_qsparse.comm.join_fallback import decode_own, dense_sum
from hvd_qsparse.comm.registry import register_exchange
from hvd_qsparse.ops import join_parts

#: Dense when the ranks' sparse payloads total more than this many dense fp32 vectors.
DENSE_FACTOR = 2


class _PendingDense(Pending):
    dense = True

    def __init__(self, comm, messages, handle, sent_bytes):
        self.comm, self.messages, self.handle, self.sent_bytes = comm, messages, handle, sent_bytes
        self.received_bytes = ring_share(4 * sum(m.ctx.numel for m in messages), comm.size)

    def wait(self) -> List[torch.Tensor]:
        summed = self.comm.synchronize(self.handle)
        return list(summed.split([m.ctx.numel for m in self.messages]))


class _PendingSparse(Pending):
    def __init__(self, exchange, messages, handle, sizes, sent_bytes):
        self.exchange, self.messages, self.handle, self.sizes = exchange, messages, handle, sizes
        self.sent_bytes = sent_bytes

    def wait(self) -> List[torch.Tensor]:
        gathered = self.exchange.comm.synchronize(self.handle)
        self.received_bytes += gathered.numel() - sum(row[self.exchange.comm.rank] for row in self.sizes)
        return self.exchange.decode(gathered, self.messages, self.sizes)


class _PendingJoined(Pending):
    """Some rank has called ``hvd.join()``: the dense sum through an allreduce (``comm.join_fallback``)."""

    dense = True

    def __init__(self, comm, compressor, messages, name, flag):
        self.results, self.flags, self.sent_bytes = dense_sum(comm, compressor, messages, name, flag)
        self.received_bytes = ring_share(self.sent_bytes, comm.size)
        self.control_bytes = 0 if flag is None else 4 * comm.size
        self.analytic_bits = 8 * self.sent_bytes  # a dense fp32 sum moved

    def wait(self) -> List[torch.Tensor]:
        return self.results


@register_exchange("sparse-or-dense")
class SparseOrDenseExchange(Exchange):
    """Every rank gets the sum over ranks of the decoded payloads, through a variable-size
    allgather of the payloads or an allreduce of their decoded sum, whichever moves fewer bytes.

    Attributes:
        dense_steps: exchanges that went dense so far (for reports and tests).
        sparse_steps: exchanges that went sparse so far.
    """

    def __init__(self, compressor, comm=None):
        super().__init__(compressor, comm)
        self._gather = AllgatherExchange(compressor, fixed_size=False, comm=self.comm)
        self.dense_steps = 0
        self.sparse_steps = 0

    def start(self, messages: Sequence[Message], name: str, flag=None) -> Pending:
        try:
            sizes = self.comm.allgather(payload_sizes(messages, flag), name=f"{name}.sizes").view(self.comm.size, -1)
        except JoinInProgress:
            return _PendingJoined(self.comm, self.compressor, messages, name, flag)
        flags = None
        if flag is not None:  # the flag rides with the sizes
            flags, sizes = sizes[:, -1].tolist(), sizes[:, :-1]
        size_bytes = 8 * len(messages)
        pending = self._start_payloads(messages, name, sizes, size_bytes)
        pending.flags, pending.control_bytes = flags, 0 if flag is None else 8
        pending.received_bytes += (self.comm.size - 1) * (size_bytes + pending.control_bytes)
        if pending.dense:  # what moved is the dense sum: 32·d bits, whatever the payloads' figure
            pending.analytic_bits = 32 * sum(m.ctx.numel for m in messages)
        return pending

    def _start_payloads(self, messages, name, sizes, size_bytes) -> Pending:
        dense_numel = sum(m.ctx.numel for m in messages)
        if int(sizes.sum()) > DENSE_FACTOR * 4 * dense_numel:
            self.dense_steps += 1
            decoded = decode_own(self.compressor, messages)
            handle = self.comm.allreduce_async(decoded, name=f"{name}.dense")
            return _PendingDense(self.comm, messages, handle, size_bytes + 4 * dense_numel)
        self.sparse_steps += 1
        buf = join_parts([m.payload for m in messages])
        handle = self.comm.allgather_async(buf, name=name)
        return _PendingSparse(self._gather, messages, handle, sizes.t().tolist(), size_bytes + buf.numel())

