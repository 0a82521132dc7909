"""What compression costs per step beside compute, fused and per tensor, side by side in one run.

``python -m hvd_qsparse.bench.compress_cost [--model resnet] [--compressor topk+sign]
[--ratio 0.01] [--steps 40]`` (or ``bash launch/bench_compress.sh``).

Trains the job's model for ``--steps`` steps with the real wrapped optimizer at H = 1 (gradient
form: compression runs in the backward hooks), once per ``--fusion`` mode, the modes taking
turns step by step so that both meet the same machine load. A one-rank Horovod world is enough:
the figure is what compression costs each rank, which does not depend on the rank count.
Per mode it prints, as medians over the steps after the first few: the step's compute (wall
time minus the compress and communicate phases the optimizer timed), compress time, its ratio
to compute, and the host synchronisations of one step inside the compress phase
(``ops.host_syncs``; a GPU would wait at each one), counted on a warm-up step that is not timed.
"""
import argparse
import statistics
import time

import torch

from hvd_qsparse.algorithms import DistributedOptimizer
from hvd_qsparse.compression import available
from hvd_qsparse.ops.host_syncs import HostSyncCounter
from hvd_qsparse.optim import FUSIONS
from hvd_qsparse.workloads.tasks import TASKS

#: steps left out of the medians (allocator and cache warm-up)
WARMUP = 3


class _Run:
    """One mode's model, optimizer and per-step figures."""

    def __init__(self, task, fusion: str, args):
        self.task, self.fusion = task, fusion
        self.model = task.build_model(args.seed)
        inner = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9)
        self.opt = DistributedOptimizer(inner, self.model.named_parameters(), compressor=args.compressor,
                                        ratio=args.ratio, local_steps=1, fusion=fusion,
                                        named_buffers=self.model.named_buffers())
        self.rows = []
        self.syncs = 0

    def step(self, x, y, count_syncs: bool = False) -> None:
        # The counter intercepts every torch call, which slows what it watches: it watches one
        # of the warm-up steps only, which the medians leave out.
        counter = HostSyncCounter()
        self.opt.pipeline.trace = counter if count_syncs else None  # around the compress phase only
        start = time.perf_counter()
        self.opt.zero_grad()
        self.task.loss(self.model(x), y).backward()
        self.opt.step()
        wall = time.perf_counter() - start
        phases = self.opt.timer.pop()
        compress, comm = phases.get("compress", 0.0), phases.get("communicate", 0.0)
        self.rows.append((wall - compress - comm, compress))
        if count_syncs:
            self.syncs = counter.total

    def medians(self):
        rows = self.rows[WARMUP:]
        return tuple(statistics.median(r[i] for r in rows) for i in range(2)) + (self.syncs,)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hvd_qsparse.bench.compress_cost", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet", choices=list(TASKS))
    p.add_argument("--compressor", default="topk+sign", choices=available())
    p.add_argument("--ratio", type=float, default=0.01)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.steps <= WARMUP:
        p.error(f"--steps must be above {WARMUP} (the first steps are not counted), got {args.steps}")
    import horovod.torch as hvd
    hvd.init()
    torch.set_num_threads(1)
    task = TASKS[args.model]()
    train, _ = task.splits(args.seed)
    runs = [_Run(task, fusion, args) for fusion in FUSIONS]
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(args.seed))
    for step in range(args.steps):
        batch = order[(step * args.batch_size) % len(train):][:args.batch_size]
        for run in runs:
            run.step(train.x[batch], train.y[batch], count_syncs=step == WARMUP - 1)
    tensors = len(list(runs[0].model.parameters()))
    print(f"{args.model}: {tensors} parameter tensors, {runs[0].opt.flat_numel()} entries; {args.compressor} "
          f"ratio={args.ratio}, H=1, batch {args.batch_size}, {args.steps} steps (medians after {WARMUP})")
    print(f"{'fusion':<8} {'compute ms':>10} {'compress ms':>11} {'compress/compute':>16} {'host syncs':>10}")
    for run in runs:
        compute, compress, syncs = run.medians()
        print(f"{run.fusion:<8} {1e3 * compute:>10.1f} {1e3 * compress:>11.2f} {100 * compress / compute:>15.1f}% "
              f"{syncs:>10.0f}")
    hvd.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
