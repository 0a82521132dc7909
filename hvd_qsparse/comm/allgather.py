"""Fused variable-size allgather of sparse/quantized payloads (Horovod ``allgather``).

All of a rank's payloads are joined into one ``uint8`` buffer, so a model with many tensors
pays one collective, not one per tensor. When every payload's size follows from its shape
(every registered compressor), ranks split the gathered buffer without further talk; for
data-dependent sizes (``fixed_size=False``) a small allgather of the per-message sizes comes
first, and its bytes are counted too.
"""
from typing import List, Sequence

import horovod.torch as hvd
import torch

from hvd_qsparse.comm.base import Exchange, Message, Pending
from hvd_qsparse.ops import aligned, join_parts


def payload_sizes(messages: Sequence[Message]) -> torch.Tensor:
    """Each message's size in the joined buffer (bytes, padded), as the size allgather sends it."""
    return torch.tensor([aligned(m.payload.numel() * m.payload.element_size()) for m in messages],
                        dtype=torch.int64)


class _PendingAllgather(Pending):
    def __init__(self, exchange, messages, buf, handle, size_handle):
        self.exchange, self.messages, self.handle, self.size_handle = exchange, messages, handle, size_handle
        self.sent_bytes = buf.numel() + (8 * len(messages) if size_handle is not None else 0)

    def wait(self) -> List[torch.Tensor]:
        gathered = hvd.synchronize(self.handle)
        if self.size_handle is None:
            per_message = [[self.exchange.compressor.payload_nbytes(m.ctx.numel)] * hvd.size()
                           for m in self.messages]
        else:
            sizes = hvd.synchronize(self.size_handle).view(hvd.size(), len(self.messages))
            per_message = sizes.t().tolist()
        return self.exchange.decode(gathered, self.messages, per_message)


class AllgatherExchange(Exchange):
    """Every rank receives every rank's payloads and decodes them all (sum over ranks)."""

    def __init__(self, compressor, fixed_size: bool = True):
        super().__init__(compressor)
        self.fixed_size = fixed_size

    def start(self, messages: Sequence[Message], name: str) -> Pending:
        buf = join_parts([m.payload for m in messages])
        size_handle = None
        if not self.fixed_size:
            size_handle = hvd.allgather_async(payload_sizes(messages), name=f"{name}.sizes")
        return _PendingAllgather(self, messages, buf, hvd.allgather_async(buf, name=name), size_handle)

    def decode(self, gathered: torch.Tensor, messages: Sequence[Message], sizes: List[List[int]]):
        """Split the gathered buffer (rank-major) and decode each tensor over all ranks."""
        ranks = len(sizes[0]) if sizes else 0
        rank_totals = [sum(sizes[i][r] for i in range(len(messages))) for r in range(ranks)]
        rank_starts = [sum(rank_totals[:r]) for r in range(ranks)]
        results, within = [], [0] * ranks
        for i, message in enumerate(messages):
            payloads = []
            for r in range(ranks):
                start = rank_starts[r] + within[r]
                payloads.append(gathered[start: start + sizes[i][r]])
                within[r] += sizes[i][r]
            results.append(self.compressor.decompress_sum(payloads, message.ctx))
        return results
