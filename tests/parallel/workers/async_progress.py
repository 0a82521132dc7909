"""Pushes complete while the host computes and makes no MPI call of its own.

The host (rank 0) computes with torch for ``BUSY`` seconds right after a barrier; every other
rank pushes ``PUSHES`` sparse updates and fetches after each. The pushing ranks must be done
before the host's computation ends (their clocks and the host's are the same machine's), and
the window must then hold all their updates. Arguments: ``thread`` or ``none`` (host progress),
then ``horovod`` or ``mpi-only``: Horovod's background thread enters MPI every cycle and so
drives progress by itself; without it, a component such as ``--mca osc ucx`` completes a push
only when the host enters MPI, which is what the progress thread is for.
"""
import sys
import time

import torch
from async_common import run_or_abort
from mpi4py import MPI

from hvd_qsparse.comm import FlatLayout, ProgressThread, Window

D, PUSHES, BUSY = 20000, 30, 5.0


def compute(seconds: float) -> None:
    a = torch.randn(256, 256)
    end = time.time() + seconds
    while time.time() < end:
        a = torch.tanh(a @ a * 1e-3)


def main(progress: str, runtime: str):
    if runtime == "horovod":
        import horovod.torch as hvd
        hvd.init()
    rank, size = MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size()
    window = Window(FlatLayout([("w", (D,))]), host_rank=0)
    thread = ProgressThread(window.comm).start() if rank == 0 and progress == "thread" else None
    if rank == 0:
        with window.lock(exclusive=True):
            window.put(torch.zeros(D))
    window.barrier()
    begin = time.time()
    if rank == 0:
        compute(BUSY)
    else:
        out = torch.zeros(D)
        for n in range(PUSHES):
            with window.lock():
                window.accumulate(torch.ones(50), torch.arange(n, D, D // 50, dtype=torch.int32)[:50])
                window.fetch(out)
    done = time.time()
    times = window.comm.allgather((begin, done))
    window.barrier()
    if rank == 0:
        host_end = times[0][1]
        latest = max(t[1] for t in times[1:])
        print(f"progress={progress} {runtime}: pushers done {latest - times[0][0]:.3f}s after the barrier, "
              f"host busy until {host_end - times[0][0]:.3f}s", flush=True)
        assert latest < host_end, "pushes waited for the busy host to enter MPI"
        if thread is not None:
            assert thread.calls > 0 and thread.running
            thread.stop()
        final = torch.zeros(D)
        with window.lock():
            window.fetch(final)
        assert final.sum().item() == 50 * PUSHES * (size - 1), final.sum().item()
    window.barrier()
    window.free()
    print(f"rank {rank}: OK", flush=True)


if __name__ == "__main__":
    run_or_abort(main, sys.argv[1], sys.argv[2])
