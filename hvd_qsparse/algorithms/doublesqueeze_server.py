r"""DoubleSqueeze's server step (Tang, Yu, Lian, Zhang, Liu, ICML 2019), for one shard.

The server of shard j averages the R workers' decoded messages and compresses the mean with
its own error-feedback memory δ̄_j:

.. math::
    \bar v = \tfrac1R \textstyle\sum_i v_i,\qquad v = Q(\bar v + \bar\delta_j),\qquad
    \bar\delta_j \leftarrow \bar v + \bar\delta_j - v.

It runs with the shard's own seed (rand-k then keeps the workers' coordinates) and the
rounding-noise stream ``comm.server_stream(j)``, so whichever rank serves gets the same reply.
The two-pass exchanges of ``comm`` call it; without memory (the ablation) v = Q(v̄).

Qsparse-local-SGD's sharded exchange (``algorithms.qsparse``) runs the same step on the
sum Σ_i v_i instead of the mean (``average=False``), since its exchanges return sums, and may
give the server pass its own operator (``reply_compressor``).
"""
from typing import Optional, Sequence

import torch

from hvd_qsparse.comm import Served, server_stream
from hvd_qsparse.compression import Compressor, Context
from hvd_qsparse.error_feedback import ErrorFeedback


class DoubleSqueezeServer:
    """The server step of the shards this rank serves.

    Args:
        compressor: Q, the operator of the workers' pass (it decodes their payloads).
        memory: δ̄ of the shards this rank serves (keyed by message), or None for the ablation.
        reply_compressor: the server pass's operator; ``compressor`` when None.
        average: compress the workers' mean (DoubleSqueeze); False: their sum.
    """

    def __init__(self, compressor: Compressor, memory: Optional[ErrorFeedback],
                 reply_compressor: Optional[Compressor] = None, average: bool = True):
        self.compressor, self.memory, self.average = compressor, memory, average
        self.reply_compressor = reply_compressor or compressor

    def serve(self, shard: int, payloads: Sequence[torch.Tensor], ctx: Context, key: Optional[str] = None) -> Served:
        """The reply for ``shard`` from the workers' ``payloads`` (rank order); δ̄ is kept
        under ``key`` (the message's name), ``shard{j}`` when None."""
        combined = self.compressor.decompress_sum(payloads, ctx)
        if self.average:
            combined = combined / len(payloads)
        stream, codec = server_stream(shard), self.reply_compressor
        if self.memory is None:
            payload, _, selection = codec.compress_selected(combined, seed=ctx.seed, stream=stream)
        else:
            payload, _, selection = self.memory.compress(key or f"shard{shard}", combined, codec,
                                                         seed=ctx.seed, stream=stream)
        return Served(payload, combined, selection.dense(ctx.numel))
