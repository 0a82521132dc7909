"""Fused allreduce of dense payloads, for summable compressors (``none``, ``fp16``).

The payloads are summed on the wire, which is only meaningful when the compressor is linear:
choosing this exchange with any other compressor fails at construction.
"""
from typing import List, Optional, Sequence

import torch

from hvd_qsparse.comm.accounting import ring_share
from hvd_qsparse.comm.base import Exchange, Message, Pending
from hvd_qsparse.comm.registry import register_exchange


class _PendingAllreduce(Pending):
    def __init__(self, exchange, messages, handle, sent_bytes, flagged, control_bytes):
        self.exchange, self.messages, self.handle, self.sent_bytes = exchange, messages, handle, sent_bytes
        self.flagged, self.control_bytes = flagged, control_bytes
        self.received_bytes = ring_share(sent_bytes, exchange.comm.size)  # as a ring moves it (accounting)

    def wait(self) -> List[torch.Tensor]:
        summed = self.exchange.comm.synchronize(self.handle)
        results, offset = [], 0
        for message in self.messages:
            n = message.ctx.numel
            chunk = summed[offset: offset + n]
            results.append(self.exchange.compressor.decode([chunk], n, message.ctx.seed))
            offset += n
        if self.flagged:
            self.flags = [int(round(float(v))) for v in summed[offset:]]
        return results


@register_exchange("allreduce")
class AllreduceExchange(Exchange):
    """Sum dense payloads across ranks with one allreduce.

    A flag rides as R extra entries, this rank's at its own index (the sum then holds every
    rank's); codes above ``MAX_FLAG`` saturate, since fp16 holds integers exactly only so far.
    """

    MAX_FLAG = 2048

    def __init__(self, compressor, comm=None, predivide: float = 1.0):
        if not compressor.summable:
            raise ValueError(f"exchange 'allreduce' needs a summable compressor (none, fp16); "
                             f"{compressor.name!r} payloads cannot be summed: use exchange='allgather'")
        super().__init__(compressor, comm)
        #: Horovod's ``gradient_predivide_factor``: scale by 1/f before the sum, by f after it
        self.predivide = predivide

    def start(self, messages: Sequence[Message], name: str, flag: Optional[int] = None) -> Pending:
        chunks = [m.payload.reshape(-1) for m in messages]
        payload_bytes = sum(c.numel() * c.element_size() for c in chunks)
        if flag is not None:
            flags = torch.zeros(self.comm.size, dtype=chunks[0].dtype, device=chunks[0].device)
            flags[self.comm.rank] = min(flag, self.MAX_FLAG)
            chunks.append(flags)
        buf = torch.cat(chunks)
        handle = self.comm.allreduce_async(buf, name=name, prescale=1.0 / self.predivide, postscale=self.predivide)
        return _PendingAllreduce(self, messages, handle, payload_bytes, flag is not None,
                                 buf.numel() * buf.element_size() - payload_bytes)
