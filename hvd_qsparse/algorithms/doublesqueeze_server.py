r"""DoubleSqueeze's server step (Tang, Yu, Lian, Zhang, Liu, ICML 2019), for one shard.

The server of shard j averages the R workers' decoded messages and compresses the mean with
its own error-feedback memory δ̄_j:

.. math::
    \bar v = \tfrac1R \textstyle\sum_i v_i,\qquad v = Q(\bar v + \bar\delta_j),\qquad
    \bar\delta_j \leftarrow \bar v + \bar\delta_j - v.

It runs with the shard's own seed (rand-k then keeps the workers' coordinates) and the
rounding-noise stream ``comm.server_stream(j)``, so whichever rank serves gets the same reply.
The two-pass exchanges of ``comm`` call it; without memory (the ablation) v = Q(v̄).
"""
from typing import Optional, Sequence

import torch

from hvd_qsparse.comm import Served, server_stream
from hvd_qsparse.compression import Compressor, Context
from hvd_qsparse.error_feedback import ErrorFeedback


class DoubleSqueezeServer:
    """The server step of the shards this rank serves.

    Args:
        compressor: Q, the operator of both passes.
        memory: δ̄ of the shards this rank serves (keyed ``shard{j}``), or None for the ablation.
    """

    def __init__(self, compressor: Compressor, memory: Optional[ErrorFeedback]):
        self.compressor, self.memory = compressor, memory

    def serve(self, shard: int, payloads: Sequence[torch.Tensor], ctx: Context) -> Served:
        """The reply for ``shard`` from the workers' ``payloads`` (rank order)."""
        mean = self.compressor.decompress_sum(payloads, ctx) / len(payloads)
        stream = server_stream(shard)
        if self.memory is None:
            payload, _, selection = self.compressor.compress_selected(mean, seed=ctx.seed, stream=stream)
        else:
            payload, _, selection = self.memory.compress(f"shard{shard}", mean, self.compressor, seed=ctx.seed,
                                                         stream=stream)
        return Served(payload, mean, selection.dense(ctx.numel))
