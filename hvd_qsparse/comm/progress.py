"""A thread that keeps MPI progressing on a rank busy with computation.

Some one-sided implementations complete an accumulate only when the target process enters
the MPI library (Open MPI's ``osc ucx`` with software atomics, ``osc rdma`` over a network
without hardware atomics); a host rank that is busy training would then hold every other
rank's push until its next MPI call. This thread enters MPI (a non-blocking probe on the
window's communicator, which drives the whole progress engine) every ``interval`` seconds.
On one node Open MPI picks ``osc sm``, where the origin writes the host's memory itself and
the thread costs only a wake-up per interval. It needs ``MPI_THREAD_MULTIPLE``, which
Horovod asks for anyway.
"""
import threading


class ProgressThread:
    """Call into MPI every ``interval`` seconds until ``stop()``.

    Args:
        comm: an mpi4py communicator (probed; nothing is ever sent on it by this thread).
        interval: seconds between calls.

    Raises:
        ValueError: a non-positive interval.
        RuntimeError: MPI was not initialized with ``MPI_THREAD_MULTIPLE``.
    """

    def __init__(self, comm, interval: float = 1e-3):
        from mpi4py import MPI
        if not interval > 0:
            raise ValueError(f"progress interval must be > 0 seconds, got {interval!r}")
        if MPI.Query_thread() < MPI.THREAD_MULTIPLE:
            raise RuntimeError("a progress thread needs MPI initialized with MPI_THREAD_MULTIPLE "
                               "(hvd.init() asks for it); use progress='none'")
        self.comm, self.interval, self.MPI = comm, interval, MPI
        self.calls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hvd_qsparse-mpi-progress", daemon=True)

    def start(self) -> "ProgressThread":
        self._thread.start()
        return self

    def _run(self) -> None:
        # Event.wait sleeps without the GIL, so training threads run between probes.
        while not self._stop.wait(self.interval):
            self.comm.Iprobe(self.MPI.ANY_SOURCE, self.MPI.ANY_TAG)
            self.calls += 1

    def stop(self) -> None:
        """Stop and join (before the communicator is freed); safe to call twice."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()
