"""A straggler: synchronous against asynchronous Qsparse-local-SGD on digits, in one run.

The last rank sleeps ``SLEEP`` seconds after every step. Both variants take the same number
of steps in total, R·S (S = one rank's steps for ``EPOCHS`` epochs): the synchronous one S
per rank, in lockstep; the asynchronous one shares a budget of R·S through the window's step
counter, so fast ranks take the steps the straggler does not (they cycle through their own
shard). Wall time runs from a common start until every rank holds the final model. Rank 0
prints both rows side by side; wall times are figures, not assertions. Checks: the step
totals, and both accuracies.

Arguments: EPOCHS SLEEP.
"""
import sys
import time

import horovod.torch as hvd
import torch
from async_common import run_or_abort

import hvd_qsparse
from hvd_qsparse.workloads.data import load_digits_split, shard_batches
from hvd_qsparse.workloads.models import accuracy, digits_mlp

OPTIONS = {"compressor": "topk+sign", "ratio": 0.05, "local_steps": 4, "seed": 0}
BATCH = 32


def run(algorithm: str, steps_per_rank: int, sleep: float, data):
    train_set, test_set = data
    rank, size = hvd.rank(), hvd.size()
    model = digits_mlp(seed=0)
    extra = {"step_budget": size * steps_per_rank} if algorithm == "qsparse-async" else {}
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                                           model.named_parameters(), algorithm=algorithm, **OPTIONS, **extra)
    opt.broadcast_state()
    loss_fn = torch.nn.CrossEntropyLoss()
    hvd.allreduce(torch.zeros(1), name=f"{algorithm}.start")
    begin, steps, epoch = time.perf_counter(), 0, 0
    while not _done(opt, algorithm, steps, steps_per_rank):
        for batch in shard_batches(len(train_set), rank, size, BATCH, 0, epoch):
            if _done(opt, algorithm, steps, steps_per_rank):
                break
            opt.zero_grad()
            loss_fn(model(train_set.x[batch]), train_set.y[batch]).backward()
            opt.step()
            steps += 1
            if rank == size - 1:
                time.sleep(sleep)
        epoch += 1
    opt.load_synchronized_model()
    wall = max(hvd.allgather_object(time.perf_counter() - begin, name=f"{algorithm}.wall"))
    per_rank = hvd.allgather_object(steps, name=f"{algorithm}.steps")
    accs = hvd.allgather_object(accuracy(model, test_set.x, test_set.y), name=f"{algorithm}.acc")
    assert max(accs) == min(accs), f"{algorithm}: ranks end with different models ({accs})"
    return {"algorithm": algorithm, "wall": wall, "steps": per_rank, "acc": accs[0],
            "bits": max(hvd.allgather_object(opt.bits.total_sent, name=f"{algorithm}.bits"))}


def _done(opt, algorithm, steps, steps_per_rank) -> bool:
    return opt.should_stop if algorithm == "qsparse-async" else steps >= steps_per_rank


def main(epochs: int, sleep: float):
    hvd.init()
    torch.set_num_threads(1)
    data = load_digits_split(seed=0)
    size = hvd.size()
    steps_per_rank = epochs * len(shard_batches(len(data[0]), 0, size, BATCH, 0, 0))
    rows = [run(name, steps_per_rank, sleep, data) for name in ("qsparse", "qsparse-async")]
    sync, asyn = rows
    if hvd.rank() == 0:
        print(f"{size} ranks, rank {size - 1} sleeps {sleep}s per step, {size * steps_per_rank} steps in all, "
              f"{OPTIONS['compressor']} ratio {OPTIONS['ratio']} H={OPTIONS['local_steps']}")
        print(f"{'algorithm':<14} {'wall':>7} {'test acc':>8} {'steps per rank':<22} {'bits/rank':>10}")
        for row in rows:
            print(f"{row['algorithm']:<14} {row['wall']:>6.2f}s {100 * row['acc']:>7.2f}% "
                  f"{row['steps']!s:<22} {row['bits']:>10.4g}")
        print(f"async/sync wall time: {asyn['wall'] / sync['wall']:.2f}", flush=True)
    total, budget, slack = sum(asyn["steps"]), size * steps_per_rank, size * OPTIONS["local_steps"]
    assert sync["steps"] == [steps_per_rank] * size, sync["steps"]
    assert budget <= total <= budget + slack, f"async took {total} steps for a budget of {budget}"
    assert sync["acc"] > 0.9 and asyn["acc"] >= sync["acc"] - 0.03, (sync["acc"], asyn["acc"])
    print(f"rank {hvd.rank()}: OK", flush=True)


if __name__ == "__main__":
    run_or_abort(main, int(sys.argv[1]), float(sys.argv[2]))
