"""ξ = 0 is distributed gradient descent: GD-SEC against stock ``hvd.DistributedOptimizer``.

Both optimizers train their own copy of the same model on the same per-rank batches; after every
step the parameters must agree to float tolerance, and every non-zero entry must have been sent.
Arguments: β, momentum, and ``ec`` (the paper's error correction) or ``ef21`` (none: EF21's rule).
"""
import sys

import horovod.torch as hvd
import torch
from common import batch, flat_params, make_model

import hvd_qsparse

TOLERANCE = 1e-6  # measured: under 1e-7 on 2 ranks, 15 steps


def main(beta: float, momentum: float, correction: str):
    hvd.init()
    ours, stock = make_model(), make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(ours.parameters(), lr=0.1, momentum=momentum),
                                           ours.named_parameters(), algorithm="gdsec", beta=beta, xi=0.0,
                                           error_correction=correction == "ec")
    ref = hvd.DistributedOptimizer(torch.optim.SGD(stock.parameters(), lr=0.1, momentum=momentum),
                                   named_parameters=stock.named_parameters())
    opt.broadcast_state()
    hvd.broadcast_parameters(stock.state_dict(), root_rank=0)
    loss_fn = torch.nn.CrossEntropyLoss()
    worst = 0.0
    for step in range(15):
        x, y = batch(hvd.rank(), step)
        for model, optimizer in ((ours, opt), (stock, ref)):
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()
            optimizer.step()
        diff = float((flat_params(ours) - flat_params(stock)).abs().max())
        worst = max(worst, diff)
        assert diff <= TOLERANCE, f"step {step}: GD-SEC(xi=0) differs from GD by {diff}"
        errors = [float(e.abs().max()) for e in opt.algorithm_state.error_feedback.memory.values()] or [0.0]
        assert max(errors) == 0.0, f"step {step}: xi=0 left an error term {max(errors)}"
    print(f"rank {hvd.rank()}: OK beta={beta} momentum={momentum} {correction} max diff {worst:.2e}", flush=True)


if __name__ == "__main__":
    main(float(sys.argv[1]), float(sys.argv[2]), sys.argv[3])
