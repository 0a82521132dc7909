"""``async_concurrency``'s rounds through a window that stages every tensor, as it does GPU
tensors: the staging buffer is reused by every call of every epoch, so a push whose origin MPI
still read while the next call overwrote it would show as a lost or wrong update here."""
import sys

import horovod.torch as hvd
import torch
from async_common import run_or_abort
from async_concurrency import D, run_rounds

from hvd_qsparse.comm import FlatLayout, Window


class StagingWindow(Window):
    """Takes every tensor through the staging buffer, as a GPU tensor would be."""

    def _stages(self, tensor) -> bool:
        return isinstance(tensor, torch.Tensor)


def main(rounds: int, pushes: int):
    hvd.init()
    rank, size = hvd.rank(), hvd.size()
    window = StagingWindow(FlatLayout([("x", (D,))]), host_rank=size - 1, counters=1)
    run_rounds(window, rounds, pushes, seed=200, modulus=5)
    assert window._staging is not None, "nothing went through the staging buffer"
    window.free()
    print(f"rank {rank}: OK staged {rounds} rounds x {pushes} pushes", flush=True)


if __name__ == "__main__":
    run_or_abort(main, int(sys.argv[1]), int(sys.argv[2]))
