"""The training job with a fault on rank 1 at a given step: ``ALGORITHM FAULT STEP [flags]``.

FAULT is ``raise`` (an exception inside training) or ``kill`` (SIGKILL: the process vanishes).
Every other rank must stop within a bounded time and the launcher must exit non-zero."""
import os
import signal
import sys

from hvd_qsparse.jobs import train as job

real_optimizer = job.DistributedOptimizer


def faulty_optimizer(fault: str, at: int):
    def build(*args, **kwargs):
        opt = real_optimizer(*args, **kwargs)
        step, counter = opt.step, [0]

        def step_with_fault(closure=None):
            counter[0] += 1
            if counter[0] == at and opt.comm.rank == 1:
                print(f"rank 1: injecting {fault} at step {at}", flush=True)
                if fault == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise RuntimeError(f"rank 1 fails on purpose at step {at}")
            return step(closure)
        opt.step = step_with_fault
        return opt
    return build


if __name__ == "__main__":
    algorithm, fault, at, *flags = sys.argv[1:]
    job.DistributedOptimizer = faulty_optimizer(fault, int(at))
    sys.exit(job.main(["--no-progress", "--epochs", "2", "--algorithm", algorithm, *flags]))
