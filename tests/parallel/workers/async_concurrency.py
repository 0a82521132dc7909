"""Every rank pushes many sparse (and some dense) updates into the window at random times.

Values are small integers, so fp32 sums are exact whatever the order: after each round the
window must equal, bit for bit, the initial content plus the sum of every update every rank
pushed (nothing lost, nothing applied twice). Each push also adds 1 to an entry that only this
rank touches, so every fetch must show exactly this rank's push count there (the fetch sees its
own push), and a counter must end at the number of pushes. Horovod runs beside, as in training.
"""
import random
import sys
import time

import horovod.torch as hvd
import torch
from async_common import run_or_abort
from mpi4py import MPI

from hvd_qsparse.comm import FlatLayout, Window

D = 5000


def one_round(window: Window, rank: int, size: int, pushes: int, rnd: random.Random):
    """Push ``pushes`` updates; returns this rank's dense sum of them."""
    own = D - 1 - rank  # only this rank writes there
    total = torch.zeros(D)
    fetched = torch.zeros(D)
    for n in range(pushes):
        time.sleep(rnd.random() * 0.002)
        if rnd.random() < 0.1:
            indices, values = None, torch.randint(-8, 9, (D,)).float()
            values[D - size:] = 0
            values[own] = 1
            total += values
        else:
            k = rnd.randint(1, 60)
            chosen = torch.tensor(sorted(rnd.sample(range(D - size), k)) + [own], dtype=torch.int32)
            values = torch.randint(-8, 9, (k + 1,)).float()
            values[-1] = 1
            total.index_add_(0, chosen.long(), values)
            indices = chosen
        with window.lock():
            window.accumulate(values, indices)
            window.add_counter(0, 1)
            window.fetch(fetched)
        assert fetched[own].item() == n + 1, f"push {n}: own entry reads {fetched[own].item()}"
        assert torch.equal(fetched, fetched.round()), "a fetch returned a torn (non-integer) entry"
    return total


def run_rounds(window, rounds: int, pushes: int, seed: int, modulus: int) -> None:
    """``rounds`` rounds from a fresh start vector: every rank's pushes, then the host's vector and
    counter must hold exactly the start plus every push (no update lost or torn)."""
    rank, size = hvd.rank(), hvd.size()
    rnd = random.Random(seed + rank)
    for r in range(rounds):
        start = torch.arange(D, dtype=torch.float32).remainder(modulus)
        start[D - size:] = 0
        if rank == 0:
            with window.lock(exclusive=True):
                window.put(start)
                window.set_counters([0])
        window.barrier()
        mine = one_round(window, rank, size, pushes, rnd)
        window.barrier()
        final = torch.zeros(D)
        with window.lock():
            window.fetch(final)
            count = window.add_counter(0, 0)
        expected = start + sum(window.comm.allgather(mine))
        assert torch.equal(final, expected), f"round {r}: max diff {(final - expected).abs().max()}"
        assert int(count[0]) == size * pushes, f"round {r}: counter {int(count[0])}"
        window.barrier()


def main(rounds: int, pushes: int):
    hvd.init()
    rank, size = hvd.rank(), hvd.size()
    window = Window(FlatLayout([("x", (D,))]), host_rank=size - 1, counters=1)
    run_rounds(window, rounds, pushes, seed=100, modulus=7)
    window.free()
    assert window.freed and MPI.Is_initialized()
    print(f"rank {rank}: OK {rounds} rounds x {pushes} pushes", flush=True)


if __name__ == "__main__":
    run_or_abort(main, int(sys.argv[1]), int(sys.argv[2]))
