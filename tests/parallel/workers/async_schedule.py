"""Asynchronous Qsparse-local-SGD under real ranks: schedules, silence, bits, nothing lost.

For each configuration (compressor, H) every rank trains a different number of steps at its
own random pace, then ``finish()``. Checks on every rank:
- clean start: the parameters and x̂ equal rank 0's initial model;
- local steps make no window call and no Horovod collective, and count no bit;
- every push is one accumulate and one fetch, at the end of a gap of ⌈H/2⌉..H steps; the ranks'
  schedules differ; the bits counted equal the bytes of the buffers handed to MPI (values and
  int32 displacements, or the dense vector), next to the compressor's analytic bits;
- with the identity compressor, the pushed values are exactly −(x̂^(r) − x^(r)_{t+½})/R;
- at the end every rank holds the same model, equal to the initial x̂ plus the sum of all
  updates all ranks pushed; the step counter equals all steps taken; the window is freed.
"""
import random
import sys
import time

import horovod.torch as hvd
import torch
from async_common import run_or_abort
from common import batch, flat_params, make_model

import hvd_qsparse

COLLECTIVES = ["allreduce", "allreduce_async", "allgather", "allgather_async", "broadcast", "broadcast_async"]
CONFIGS = [("topk+sign", 4), ("sign", 2), ("none", 3)]


class Spy:
    """Records the window calls (the real calls still happen) and every pushed update."""

    def __init__(self, opt):
        self.opt, self.calls, self.pushed = opt, [], torch.zeros(opt.flat_numel(), dtype=torch.float64)
        self.expected_values = None
        window = opt.window
        for name in ("accumulate", "fetch", "put", "add_counter"):
            setattr(window, name, self.wrap(name, getattr(window, name)))
        for name in COLLECTIVES:
            setattr(hvd, name, self.wrap(name, getattr(hvd, name)))

    def wrap(self, name, real):
        def call(*args, **kwargs):
            self.calls.append(name)
            if name == "accumulate":
                self.on_accumulate(*args)
            return real(*args, **kwargs)
        return call

    def on_accumulate(self, values, indices):
        if self.opt.algorithm_state.compressor.name == "none":
            x_hat = self.opt.layout.flatten(self.opt.algorithm_state.x_hat.items())
            change = x_hat - self.opt.layout.flatten(self.opt.named_params)
            assert torch.equal(values, change / -hvd.size()), "identity push is not -(x̂ - x)/R"
        if indices is None:
            self.pushed += values.double()
        else:
            self.pushed.index_add_(0, indices.long(), values.double())


def expected_bytes(opt) -> int:
    compressor, sizes = opt.algorithm_state.compressor, [p.numel() for _, p in opt.named_params]
    if hasattr(compressor, "sparsifier"):
        return 8 * sum(compressor.sparsifier.k(n) for n in sizes)
    return 4 * sum(sizes)


def run(compressor: str, local_steps: int):
    rank, size = hvd.rank(), hvd.size()
    model = make_model(seed=rank)  # different on purpose: the start must make them equal
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model.named_parameters(),
                                           algorithm="qsparse-async", compressor=compressor, ratio=0.2,
                                           levels=8, local_steps=local_steps, seed=3)
    opt.start()  # without broadcast_state: the window alone must bring rank 0's model everywhere
    start = flat_params(model)
    assert torch.equal(start, flat_params(make_model(seed=0))), "start is not rank 0's model"
    assert torch.equal(opt.x_hat_flat, start)
    assert (opt.progress is not None) == (rank == 0), "only the host runs a progress thread"
    spy, rnd, loss_fn = Spy(opt), random.Random(rank), torch.nn.CrossEntropyLoss()
    steps, push_steps = 12 + 5 * rank, []
    for step in range(steps):
        spy.calls.clear()
        x, y = batch(rank, step)
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        time.sleep(rnd.random() * 0.004 * (rank + 1))
        bits = opt.bits.bits_at(step)
        if not spy.calls:
            assert bits == 0, f"local step {step} counted {bits} bits"
            continue
        assert spy.calls == ["accumulate", "add_counter", "fetch"], f"step {step}: calls {spy.calls}"
        assert bits == 8 * expected_bytes(opt), f"step {step}: counted {bits}, buffers hold {8 * expected_bytes(opt)}"
        analytic = opt.bits.history[-1].analytic
        assert analytic == sum(opt.algorithm_state.compressor.analytic_bits(p.numel()) for _, p in opt.named_params)
        push_steps.append(step + 1)
    gaps = [b - a for a, b in zip([0] + push_steps, push_steps)]
    low = -(-local_steps // 2)
    assert gaps and all(low <= g <= local_steps for g in gaps), f"gaps {gaps} outside [{low}, {local_steps}]"
    opt.finish()
    assert opt.window.freed and (opt.progress is None or not opt.progress.running)
    final = flat_params(model)
    everyone = hvd.allgather(final.unsqueeze(0), name=f"final.{compressor}")
    assert all(torch.equal(everyone[0], row) for row in everyone), "ranks end with different models"
    total = hvd.allreduce(spy.pushed, op=hvd.Sum, name=f"pushed.{compressor}")
    diff = (final.double() - (start.double() + total)).abs().max().item()
    assert diff < 1e-5, f"final x̂ differs from start + all pushes by {diff}"
    assert opt.algorithm_state.global_steps == sum(12 + 5 * r for r in range(size)), opt.algorithm_state.global_steps
    schedules = hvd.allgather_object(push_steps, name=f"schedules.{compressor}")
    assert len({tuple(s[:3]) for s in schedules}) > 1, f"schedules aligned: {schedules}"
    try:
        opt.step()
        raise AssertionError("step() after finish() did not raise")
    except RuntimeError as err:
        assert "finish" in str(err)
    print(f"rank {rank}: {compressor} H={local_steps} pushes at {push_steps}, max |x̂ - sum| {diff:.2e}", flush=True)


def main():
    hvd.init()
    real = {name: getattr(hvd, name) for name in COLLECTIVES}
    for compressor, local_steps in CONFIGS:
        run(compressor, local_steps)
        for name, fn in real.items():
            setattr(hvd, name, fn)
    print(f"rank {hvd.rank()}: OK", flush=True)


if __name__ == "__main__":
    run_or_abort(main)
    sys.exit(0)
