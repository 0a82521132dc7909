"""A stalled job ends with an error instead of hanging: the step watchdog.

A link that goes down mid-run, a blackholed path or a rank stuck in a collective leave every
other rank blocked inside MPI or Gloo with no error (Open MPI's TCP transport waits for ever).
Even where the ranks train over shared memory, the launcher's bootstrap runs over TCP, so a dead
link stalls ``MPI_Finalize`` at the end of a finished run. The watchdog is a daemon thread on
every rank that watches three phases: when start-up (data, model, the first broadcast and the
first step) takes longer than ``startup`` seconds, when no training step has finished for
``timeout`` seconds, or when shutting down takes longer than that, it logs which rank waited how
long and for what, then ends the process with exit code 1, so the launcher ends the whole job.
Every rank's watchdog fires on its own, so every rank says so, within the bound plus a second.

Start-up has its own, longer bound because its length is not a step's: loading the data, building
the model and Horovod's first negotiation take seconds more on a loaded machine, and a tight
``--step-timeout`` chosen for the steps must not end a healthy job before it trains.
"""
import logging
import os
import sys
import threading
import time
from typing import Callable

log = logging.getLogger("hvd_qsparse.jobs.watchdog")


class StepWatchdog:
    """Ends the process when ``beat`` has not been called for its bound.

    Args:
        timeout: seconds without a finished step (or for the shutdown); 0 turns the watchdog off.
        rank, size: for the message.
        startup: seconds until the first step has finished; the larger of it and ``timeout``
            applies, so it never makes the watchdog stricter.
    """

    def __init__(self, timeout: float, rank: int, size: int, startup: float = 120.0):
        self.timeout, self.rank, self.size = timeout, rank, size
        self.steps, self._last = 0, time.monotonic()
        self._phase("start-up (data, model, the first broadcast and step) has not finished",
                    *max((startup, "--startup-timeout"), (timeout, "--step-timeout")))

    def _phase(self, waiting_for: str, bound: float, flag: str) -> None:
        self._waiting_for, self._bound, self._flag = waiting_for, bound, flag
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="hvd_qsparse-watchdog", daemon=True)

    def start(self) -> "StepWatchdog":
        if self.timeout > 0:
            self._last = time.monotonic()
            self._thread.start()
        return self

    def beat(self, steps: int = 1) -> None:
        """``steps`` training steps have finished (0: progress of another kind, a restart)."""
        if steps and not self.steps:
            self._phase("no training step finished", self.timeout, "--step-timeout")
        self.steps += steps
        self._last = time.monotonic()

    def shutting_down(self) -> None:
        """Training is over and its outputs are written; from now on the clock bounds the
        shutdown (Horovod's and MPI's finalize), which needs the network too."""
        self._phase("the outputs are written, but shutting down (MPI/Gloo finalize) has not finished", self.timeout,
                    "--step-timeout")
        self._last = time.monotonic()

    def finish(self, shutdown: Callable[[], None]) -> None:
        """Run ``shutdown`` (``hvd.shutdown``) under the clock, then stop watching."""
        self.shutting_down()
        shutdown()
        self.stop()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(min(1.0, self.timeout / 4)):
            waited = time.monotonic() - self._last
            if waited > self._bound:
                message = (f"rank {self.rank} of {self.size}: {self._waiting_for} for {waited:.0f} s "
                           f"({self._flag} {self._bound:g}) after {self.steps} steps: a stalled network, or "
                           "a rank stuck or gone; ending the job")
                if log.hasHandlers():
                    log.error(message)
                else:
                    print(message, file=sys.stderr, flush=True)
                logging.shutdown()
                os._exit(1)
