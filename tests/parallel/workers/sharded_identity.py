"""The sharded exchange with the identity compressor is the dense rule, and ranks stay equal.

H = 1: Qsparse with ``exchange="sharded"`` and ``compressor="none"`` gives stock
``hvd.DistributedOptimizer``'s parameters; H = 3: the same model averaging as the allgather
(to 1e-6), for Qsparse and for RI-SGD; with top-k, every rank holds the same model after
every synchronization."""
import horovod.torch as hvd
import torch
from common import flat_params, make_model, train_steps

import hvd_qsparse

STEPS, ATOL = 6, 1e-6


def stock():
    model = make_model()
    opt = hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                   named_parameters=model.named_parameters())
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    train_steps(model, opt, hvd.rank(), 0, STEPS)
    return flat_params(model)


def ours(exchange, algorithm="qsparse", steps=STEPS, after_step=None, **options):
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                           model.named_parameters(), algorithm=algorithm, exchange=exchange,
                                           **options)
    opt.broadcast_state()
    for step in range(steps):
        train_steps(model, opt, hvd.rank(), step, 1)
        if after_step is not None:
            after_step(opt, model, step)
    opt.load_synchronized_model()
    return flat_params(model), opt


def same_on_every_rank(opt, model, step):
    """After a synchronization, every rank's parameters are bit-identical."""
    if opt.algorithm_state.local_steps == 1 or (step + 1) % opt.algorithm_state.local_steps == 0:
        mine = flat_params(model)
        everyone = hvd.allgather(mine.unsqueeze(0), name=f"same.{step}.{opt.algorithm_state.local_steps}")
        assert all(torch.equal(row, mine) for row in everyone), f"step {step}: ranks differ"


def main():
    hvd.init()
    reference = stock()
    assert (reference - flat_params(make_model())).abs().max() > 1e-3, "training did not move the parameters"
    mine, opt = ours("sharded", compressor="none", local_steps=1)
    assert (mine - reference).abs().max() <= ATOL, f"H=1 sharded: max |ours - horovod| = {(mine - reference).abs().max()}"
    assert opt.bits.total_received > 0 and opt.algorithm_state.server_memory is not None
    for algorithm in ("qsparse", "risgd"):
        gathered, _ = ours("allgather", algorithm, compressor="none", local_steps=3)
        sharded, _ = ours("sharded", algorithm, compressor="none", local_steps=3)
        diff = (gathered - sharded).abs().max()
        assert diff <= ATOL, f"{algorithm} H=3: sharded differs from the allgather by {diff}"
    for local_steps in (1, 2):
        ours("sharded", compressor="topk+sign", ratio=0.2, local_steps=local_steps, steps=8,
             after_step=same_on_every_rank)
    print(f"rank {hvd.rank()}: OK", flush=True)


if __name__ == "__main__":
    main()
