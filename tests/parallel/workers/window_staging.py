"""``async_concurrency``'s rounds through a window that stages every tensor, as it does GPU
tensors: the staging buffer is reused by every call of every epoch, so a push whose origin MPI
still read while the next call overwrote it would show as a lost or wrong update here."""
import random
import sys

import horovod.torch as hvd
import torch
from async_common import run_or_abort
from async_concurrency import D, one_round

from hvd_qsparse.comm import FlatLayout, Window


class StagingWindow(Window):
    """Takes every tensor through the staging buffer, as a GPU tensor would be."""

    def _stages(self, tensor) -> bool:
        return isinstance(tensor, torch.Tensor)


def main(rounds: int, pushes: int):
    hvd.init()
    rank, size = hvd.rank(), hvd.size()
    window = StagingWindow(FlatLayout([("x", (D,))]), host_rank=size - 1, counters=1)
    rnd = random.Random(200 + rank)
    for r in range(rounds):
        start = torch.arange(D, dtype=torch.float32).remainder(5)
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
    assert window._staging is not None, "nothing went through the staging buffer"
    window.free()
    print(f"rank {rank}: OK staged {rounds} rounds x {pushes} pushes", flush=True)


if __name__ == "__main__":
    run_or_abort(main, int(sys.argv[1]), int(sys.argv[2]))
