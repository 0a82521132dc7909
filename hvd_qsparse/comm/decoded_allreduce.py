"""Each rank decodes its own payloads and one fp32 allreduce sums them: the dense path.

The sums are those of an allgather of the payloads (up to the order of the fp32 additions),
while each rank receives what a ring allreduce of d entries delivers, 2(R − 1)/R · 4d bytes,
whatever R: for large payloads (dense quantizers, high ratios) at many ranks that is less than
an allgather's (R − 1) payloads. ``exchange=auto`` takes it when the cost model says so
(``comm.cost_model``). A flag rides as in ``AllreduceExchange``.
"""
from typing import Optional, Sequence

import torch

from hvd_qsparse.comm.allreduce import AllreduceExchange
from hvd_qsparse.comm.base import Exchange, Message, Pending
from hvd_qsparse.comm.registry import register_exchange
from hvd_qsparse.compression import Context, NoneCompressor


@register_exchange("dense")
class DecodedAllreduceExchange(Exchange):
    """Decode this rank's messages (from their selections), allreduce the fp32 values."""

    def __init__(self, compressor, comm=None):
        super().__init__(compressor, comm)
        self._sum = AllreduceExchange(NoneCompressor(), comm=self.comm)

    def start(self, messages: Sequence[Message], name: str, flag: Optional[int] = None) -> Pending:
        dense = [Message(m.dense(self.compressor), Context(torch.Size([m.ctx.numel]), torch.float32, None))
                 for m in messages]
        pending = self._sum.start(dense, name, flag)
        pending.dense, pending.analytic_bits = True, 32 * sum(m.ctx.numel for m in messages)
        return pending
