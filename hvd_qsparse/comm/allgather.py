"""Fused variable-size allgather of sparse/quantized payloads (Horovod ``allgather``).

All of a rank's payloads are joined into one ``uint8`` buffer, so a model with many tensors
pays one collective, not one per tensor. When every payload's size follows from its shape
(every registered compressor), ranks split the gathered buffer without further talk; for
data-dependent sizes (``fixed_size=False``) a small allgather of the per-message sizes comes
first, and its bytes are counted too.
"""
from typing import List, Optional, Sequence

import torch

from hvd_qsparse.comm.accounting import ring_share
from hvd_qsparse.comm.base import Exchange, Message, Pending
from hvd_qsparse.backend import JoinInProgress
from hvd_qsparse.comm.join_fallback import dense_sum
from hvd_qsparse.comm.registry import register_exchange
from hvd_qsparse.ops import aligned, join_parts


def payload_sizes(messages: Sequence[Message], flag: Optional[int] = None) -> torch.Tensor:
    """Each message's size in the joined buffer (bytes, padded), as the size allgather sends it,
    then ``flag`` when one rides along."""
    sizes = [aligned(m.payload.numel() * m.payload.element_size()) for m in messages]
    return torch.tensor(sizes + ([] if flag is None else [flag]), dtype=torch.int64)


FLAG_BYTES = 4  # an int32 flag, aligned, at the end of a rank's buffer when one rides along


def rank_segments(sizes: List[List[int]], ranks: int, extra: int = 0):
    """``(starts, totals)`` of each rank's segment in a gathered buffer, from the per-message,
    per-rank sizes, with ``extra`` bytes after each rank's payloads."""
    totals = [sum(row[r] for row in sizes) + extra for r in range(ranks)]
    return [sum(totals[:r]) for r in range(ranks)], totals


class _PendingAllgather(Pending):
    def __init__(self, exchange, messages, buf, handle, size_handle, name, flag):
        self.exchange, self.messages, self.handle, self.size_handle = exchange, messages, handle, size_handle
        self.name, self.flag = name, flag
        self.flagged = flag is not None  # in the buffer's tail (fixed sizes) or the sizes' (variable sizes)
        self.control_bytes = (FLAG_BYTES if size_handle is None else 8) if self.flagged else 0
        sizes = 8 * len(messages) if size_handle is not None else 0
        self.sent_bytes = buf.numel() + sizes - (self.control_bytes if size_handle is None else 0)
        self._own = (buf.numel(), sizes + self.control_bytes if size_handle is not None else 0)

    def wait(self) -> List[torch.Tensor]:
        comm = self.exchange.comm
        try:
            gathered = comm.synchronize(self.handle)
        except JoinInProgress:
            return self._joined()
        own_buffer, own_sizes = self._own
        self.received_bytes = gathered.numel() - own_buffer + (comm.size - 1) * own_sizes
        if self.size_handle is None:
            per_message = [[self.exchange.compressor.payload_nbytes(m.ctx.numel)] * comm.size
                           for m in self.messages]
        else:
            try:
                sizes = comm.synchronize(self.size_handle).view(comm.size, -1)
            except JoinInProgress:
                return self._joined()
            if self.flagged:
                self.flags, sizes = sizes[:, -1].tolist(), sizes[:, :-1]
            return self.exchange.decode(gathered, self.messages, sizes.t().tolist())
        if not self.flagged:
            return self.exchange.decode(gathered, self.messages, per_message)
        starts, totals = rank_segments(per_message, comm.size, FLAG_BYTES)
        self.flags = [int(gathered[s + t - FLAG_BYTES: s + t].view(torch.int32)) for s, t in zip(starts, totals)]
        return self.exchange.decode(gathered, self.messages, per_message, extra=FLAG_BYTES)

    def _joined(self) -> List[torch.Tensor]:
        """Some rank has called ``hvd.join()``: the dense sum through an allreduce instead."""
        if self.size_handle is not None:
            try:
                self.exchange.comm.synchronize(self.size_handle)
            except JoinInProgress:
                pass
        totals, self.flags, self.sent_bytes = dense_sum(self.exchange.comm, self.exchange.compressor,
                                                        self.messages, self.name, self.flag)
        self.received_bytes = ring_share(self.sent_bytes, self.exchange.comm.size)
        self.dense, self.control_bytes = True, 0 if self.flag is None else 4 * self.exchange.comm.size
        return totals


@register_exchange("allgather")
class AllgatherExchange(Exchange):
    """Every rank receives every rank's payloads and decodes them all (sum over ranks)."""

    def __init__(self, compressor, fixed_size: bool = True, comm=None):
        super().__init__(compressor, comm)
        self.fixed_size = fixed_size

    def start(self, messages: Sequence[Message], name: str, flag: Optional[int] = None) -> Pending:
        parts = [m.payload for m in messages]
        size_handle = None
        if not self.fixed_size:
            size_handle = self.comm.allgather_async(payload_sizes(messages, flag), name=f"{name}.sizes")
        elif flag is not None:
            parts.append(torch.tensor([flag], dtype=torch.int32, device=parts[0].device if parts else "cpu"))
        buf = join_parts(parts)
        return _PendingAllgather(self, messages, buf, self.comm.allgather_async(buf, name=name), size_handle,
                                 name, flag)

    def decode(self, gathered: torch.Tensor, messages: Sequence[Message], sizes: List[List[int]], extra: int = 0):
        """Split the gathered buffer (rank-major, ``extra`` bytes after each rank's payloads)
        and decode each tensor over all ranks."""
        ranks = len(sizes[0]) if sizes else 0
        rank_starts, _ = rank_segments(sizes, ranks, extra)
        results, within = [], [0] * ranks
        for i, message in enumerate(messages):
            payloads = []
            for r in range(ranks):
                start = rank_starts[r] + within[r]
                payloads.append(gathered[start: start + sizes[i][r]])
                within[r] += sizes[i][r]
            results.append(self.compressor.decompress_sum(payloads, message.ctx))
        return results
