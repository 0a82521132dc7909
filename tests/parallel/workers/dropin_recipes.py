"""Horovod habits, one line swapped: ours (identity compressor) against stock hvd.DistributedOptimizer.

Each case trains the same model from the same start with stock Horovod and with
hvd_qsparse.DistributedOptimizer built from exactly the same arguments, and compares the
parameters (1e-6). Cases: gradient clipping through synchronize()/skip_synchronize(),
backward_passes_per_step=2, op=hvd.Sum, gradient_predivide_factor, groups (lists and an int),
StepLR and OneCycleLR, and the positional form (opt, named_parameters, hvd.Compression.none).
"""
import sys

import horovod.torch as hvd
import torch
from common import batch, flat_params, make_model

import hvd_qsparse

STEPS, ATOL = 6, 1e-6
LOSS = torch.nn.CrossEntropyLoss()


def run(make_opt, loop, steps=STEPS, scheduler=None):
    model = make_model()
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    opt = make_opt(model)
    sched = scheduler(opt) if scheduler else None
    for step in range(steps):
        loop(model, opt, step)
        if sched is not None:
            sched.step()
    return flat_params(model)


def plain(model, opt, step):
    x, y = batch(hvd.rank(), step)
    opt.zero_grad()
    LOSS(model(x), y).backward()
    opt.step()


def clipped(model, opt, step):
    x, y = batch(hvd.rank(), step)
    opt.zero_grad()
    LOSS(model(x), y).backward()
    opt.synchronize()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.05)
    with opt.skip_synchronize():
        opt.step()


def accumulated(model, opt, step):
    opt.zero_grad()
    for micro in range(2):
        x, y = batch(hvd.rank(), 10 * step + micro)
        (LOSS(model(x), y) / 2).backward()
    opt.step()


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def both(name, loop=plain, scheduler=None, **keywords):
    """Train with stock Horovod and with ours from the same keywords; compare."""
    def stock(model):
        kw = {k: (v(model) if callable(v) else v) for k, v in keywords.items()}
        return hvd.DistributedOptimizer(sgd(model), named_parameters=model.named_parameters(), **kw)

    def ours(model):
        kw = {k: (v(model) if callable(v) else v) for k, v in keywords.items()}
        opt = hvd_qsparse.DistributedOptimizer(sgd(model), named_parameters=model.named_parameters(),
                                               compressor="none", **kw)
        assert isinstance(opt, torch.optim.Optimizer)
        return opt

    reference = run(stock, loop, scheduler=scheduler)
    mine = run(ours, loop, scheduler=scheduler)
    start = flat_params(make_model())
    assert (reference - start).abs().max() > 1e-3, f"{name}: training did not move the parameters"
    diff = (mine - reference).abs().max().item()
    assert diff <= ATOL, f"{name}: max |ours - horovod| = {diff}"
    print(f"rank {hvd.rank()}: {name} max diff {diff:.1e}", flush=True)


def main():
    hvd.init()
    both("clipping with skip_synchronize", loop=clipped)
    both("backward_passes_per_step=2", loop=accumulated, backward_passes_per_step=2)
    both("op=hvd.Sum", op=hvd.Sum)
    both("gradient_predivide_factor=2", gradient_predivide_factor=2.0)
    both("groups as lists", groups=lambda m: [[m[0].weight, m[2].weight]])
    both("groups=2", groups=2)
    both("StepLR", scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5))
    both("OneCycleLR", scheduler=lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.2, total_steps=STEPS))
    positional = run(lambda m: hvd_qsparse.DistributedOptimizer(sgd(m), m.named_parameters(), hvd.Compression.none),
                     plain)
    stock = run(lambda m: hvd.DistributedOptimizer(sgd(m), m.named_parameters(), hvd.Compression.none), plain)
    assert (positional - stock).abs().max().item() <= ATOL, "positional (opt, names, hvd.Compression.none)"
    print(f"rank {hvd.rank()}: OK", flush=True)


if __name__ == "__main__":
    main()
    sys.exit(0)
