"""The job's entry point on 2 ranks where rank 1's training raises after rank 0 has entered a
collective: the job must end with a non-zero code, not hang."""
import sys

from hvd_qsparse.jobs import train as job

real_train = job.train


def train_failing_on_rank_1(args, hvd_module, watchdog):
    if hvd_module.rank() == 1:
        raise RuntimeError("rank 1 fails on purpose")
    return real_train(args, hvd_module, watchdog)


if __name__ == "__main__":
    job.train = train_failing_on_rank_1
    sys.exit(job.main(["--no-progress", "--epochs", "1"]))
