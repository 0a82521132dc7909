"""A user script under qsparse-async whose rank 1 meets NaN and lets the error propagate: the
job must end with a non-zero code and the error, and no rank may die of a segmentation fault
(finalizing MPI under a live window used to crash the others)."""
import sys

import horovod.torch as hvd
import torch
from torch import nn

import hvd_qsparse

from common import batch, make_model

if __name__ == "__main__":
    hvd.init()
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model.named_parameters(),
                                           algorithm="qsparse-async", compressor="topk+sign", ratio=0.3,
                                           local_steps=2, progress=sys.argv[1])
    opt.broadcast_state()
    for step in range(12):
        x, y = batch(hvd.rank(), step)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        if step == 3 and hvd.rank() == 1:
            loss = loss * float("nan")
        loss.backward()
        opt.step()
    opt.finish()
