"""hvd.join() with uneven batches: rank 1 runs out after 4 steps, rank 0 trains 7, then both join.

The identity compressor matches stock Horovod (1e-6), whose averages divide by the full size
while joined ranks contribute zeros. Lossy exchanges (topk+sign at H = 1 and H = 3, GD-SEC, DoubleSqueeze) meet
Horovod's refusal of allgathers under join and fall back to a dense allreduce (DoubleSqueeze: of
the workers' messages, without the server pass, whose shards' servers are gone): rank 0 finishes
every step with finite, moving parameters, and those steps count dense bits.
"""
import horovod.torch as hvd
import torch
from common import batch, flat_params, make_model

import hvd_qsparse

LOSS = torch.nn.CrossEntropyLoss()
STEPS = {0: 7, 1: 4}


def run(make):
    model = make_model()
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    opt = make(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    for step in range(STEPS[hvd.rank()]):
        x, y = batch(hvd.rank(), step)
        opt.zero_grad()
        LOSS(model(x), y).backward()
        opt.step()
    hvd.join()
    return flat_params(model), opt


def main():
    hvd.init()
    stock, _ = run(lambda m, o: hvd.DistributedOptimizer(o, named_parameters=m.named_parameters()))
    ours, _ = run(lambda m, o: hvd_qsparse.DistributedOptimizer(o, m.named_parameters(), compressor="none"))
    assert (stock - ours).abs().max().item() <= 1e-6, f"identity under join: {(stock - ours).abs().max()}"
    print(f"rank {hvd.rank()}: identity after join OK", flush=True)
    start = flat_params(make_model())
    for name, options in (("topk+sign H=1", dict(compressor="topk+sign", ratio=0.3)),
                          ("topk+sign H=3", dict(compressor="topk+sign", ratio=0.3, local_steps=3)),
                          ("gdsec", dict(algorithm="gdsec", xi=1.0)),
                          ("doublesqueeze", dict(algorithm="doublesqueeze", compressor="sign"))):
        params, opt = run(lambda m, o: hvd_qsparse.DistributedOptimizer(o, m.named_parameters(), **options))
        assert torch.isfinite(params).all() and (params - start).abs().max() > 1e-3, name
        assert opt.step_count == STEPS[hvd.rank()], f"{name}: {opt.step_count} steps"
        if hvd.rank() == 0:
            late = [s for s in opt.bits.history if s.step >= STEPS[1] and s.sent]
            assert late and all(s.sent == 32 * opt.flat_numel() for s in late), f"{name}: {late}"
        print(f"rank {hvd.rank()}: {name} after join OK", flush=True)
    print(f"rank {hvd.rank()}: OK", flush=True)


if __name__ == "__main__":
    main()
