"""Exchanges while some ranks have called ``hvd.join()``: the dense sum through an allreduce.

With uneven data, a rank that runs out of batches calls ``hvd.join()``; Horovod then runs only
allreduces, in which joined ranks contribute zeros, and refuses allgathers and alltoalls (it
says so to every rank that has not joined, and stays usable: ``comm.JoinInProgress``). An
exchange that meets this decodes its own payloads and allreduces their dense fp32 sum instead:
the same sum over the ranks still training, divided later by the full size, as Horovod's own
averaging does under join. A flag riding along (``Exchange.start(flag=...)``) travels as R extra
entries, this rank's at its own index.
"""
from typing import List, Optional, Sequence, Tuple

import torch


def decode_own(compressor, messages: Sequence) -> torch.Tensor:
    """This rank's payloads as one flat fp32 vector (what a dense allreduce then sums), taken
    from their selections (``Message.dense``)."""
    parts = [m.dense(compressor) for m in messages]
    device = messages[0].payload.device if messages else "cpu"
    return torch.cat(parts) if parts else torch.zeros(0, device=device)


def dense_sum(comm, compressor, messages: Sequence, name: str,
              flag: Optional[int] = None) -> Tuple[List[torch.Tensor], Optional[List[int]], int]:
    """``(sums per message, every rank's flag or None, bytes this rank sent)``."""
    buf = decode_own(compressor, messages)
    if flag is not None:
        flags = torch.zeros(comm.size, dtype=torch.float32, device=buf.device)
        flags[comm.rank] = float(flag)
        buf = torch.cat([buf, flags])
    summed = comm.synchronize(comm.allreduce_async(buf, name=f"{name}.joined"))
    sizes = [m.ctx.numel for m in messages]
    totals = list(summed[:sum(sizes)].split(sizes))
    got = None if flag is None else [int(round(float(v))) for v in summed[sum(sizes):]]
    return totals, got, 4 * sum(sizes)
