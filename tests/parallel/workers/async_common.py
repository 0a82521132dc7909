"""What the asynchronous workers share: abort the whole job when one rank fails.

A rank that raises while the others wait in a barrier or a window epoch would otherwise hang
in ``MPI_Finalize`` at exit, and the harness would only see its timeout.
"""
import sys
import traceback


def run_or_abort(main, *args) -> None:
    """``main(*args)``; on any exception print it and ``MPI_Abort`` every rank."""
    try:
        main(*args)
    except BaseException:  # noqa: BLE001 - any failure must end every rank
        traceback.print_exc()
        sys.stderr.flush()
        from mpi4py import MPI
        MPI.COMM_WORLD.Abort(1)
