"""Fused allreduce of dense payloads, for summable compressors (``none``, ``fp16``).

The payloads are summed on the wire, which is only meaningful when the compressor is linear:
choosing this exchange with any other compressor fails at construction.
"""
from typing import List, Sequence

import horovod.torch as hvd
import torch

from hvd_qsparse.comm.base import Exchange, Message, Pending


class _PendingAllreduce(Pending):
    def __init__(self, exchange, messages, handle, sent_bytes):
        self.exchange, self.messages, self.handle, self.sent_bytes = exchange, messages, handle, sent_bytes

    def wait(self) -> List[torch.Tensor]:
        summed = hvd.synchronize(self.handle)
        results, offset = [], 0
        for message in self.messages:
            n = message.ctx.numel
            chunk = summed[offset: offset + n]
            results.append(self.exchange.compressor.decode([chunk], n, message.ctx.seed))
            offset += n
        return results


class AllreduceExchange(Exchange):
    """Sum dense payloads across ranks with one allreduce."""

    def __init__(self, compressor):
        if not compressor.summable:
            raise ValueError(f"exchange 'allreduce' needs a summable compressor (none, fp16); "
                             f"{compressor.name!r} payloads cannot be summed: use exchange='allgather'")
        super().__init__(compressor)

    def start(self, messages: Sequence[Message], name: str) -> Pending:
        buf = torch.cat([m.payload.reshape(-1) for m in messages])
        handle = hvd.allreduce_async(buf, op=hvd.Sum, name=name)
        return _PendingAllreduce(self, messages, handle, buf.numel() * buf.element_size())
