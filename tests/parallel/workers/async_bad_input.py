"""Bad input gives the same clear error on every rank, and nobody hangs.

Argument ``bad-input``: models that differ between ranks, a host rank out of range, an unknown
progress mode, a zero step budget, a checkpoint of another model, another rank's checkpoint;
then a correct optimizer still trains and finishes (nothing left half-made).
Argument ``no-one-sided`` (run with ``--mca osc pt2pt``, which refuses the
``MPI_THREAD_MULTIPLE`` that Horovod needs, as an MPI without usable one-sided support):
building the optimizer raises ``OneSidedUnavailableError`` on every rank.
"""
import sys

import horovod.torch as hvd
import torch
from async_common import run_or_abort
from common import make_model, train_steps
from torch import nn

import hvd_qsparse
from hvd_qsparse.comm import OneSidedUnavailableError


def build(model, **kwargs):
    options = {"algorithm": "qsparse-async", "compressor": "topk", "ratio": 0.5, "local_steps": 2}
    options.update(kwargs)
    return hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model.named_parameters(),
                                            **options)


def expect(error, needles, make):
    try:
        make()
    except error as err:
        assert all(n in str(err) for n in needles), f"{needles} not in: {err}"
        return str(err)
    raise AssertionError(f"no {error.__name__} (expected one mentioning {needles})")


def other_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 5))


def bad_input():
    rank = hvd.rank()
    mine = make_model() if rank == 0 else other_model()
    message = expect(ValueError, ["window layout mismatch", "rank 1", "[5, 16]"], lambda: build(mine))
    assert hvd.allgather_object(message, name="same.message") == [message] * hvd.size()
    expect(ValueError, ["host_rank", "[0, 1]", "7"], lambda: build(make_model(), host_rank=7))
    expect(ValueError, ["progress", "thread", "none", "fast"], lambda: build(make_model(), progress="fast"))
    expect(ValueError, ["step_budget", ">= 1"], lambda: build(make_model(), step_budget=0))
    model = make_model()
    opt = build(model)
    opt.broadcast_state()
    train_steps(model, opt, rank, 0, 3)
    state = opt.state_dict()
    opt.finish()
    for other, saved, needles in ((other_model(), state, ["window layout mismatch", "checkpoint", "[5, 16]"]),
                                  (make_model(), hvd.allgather_object(state, name="states")[1 - rank],
                                   ["rank=", "load each rank's own file"])):
        fresh = build(other)
        expect(ValueError, needles, lambda fresh=fresh, saved=saved: fresh.load_state_dict(saved))
        fresh.finish()
    model = make_model()
    opt = build(model, step_budget=6)
    opt.broadcast_state()
    train_steps(model, opt, rank, 0, 4)
    opt.finish()
    assert opt.should_stop and opt.algorithm_state.global_steps == 4 * hvd.size()


def no_one_sided():
    message = expect(OneSidedUnavailableError, ["MPI_Win_allocate failed", "--algorithm qsparse", "--mca osc"],
                     lambda: build(make_model()))
    print(f"rank {hvd.rank()}: {message[:100]}...", flush=True)


def main(mode):
    hvd.init()
    {"bad-input": bad_input, "no-one-sided": no_one_sided}[mode]()
    print(f"rank {hvd.rank()}: OK {mode}", flush=True)


if __name__ == "__main__":
    run_or_abort(main, sys.argv[1])
