"""The elastic RI-SGD job: survives losing workers (``bash launch/train_elastic.sh [flags]``).

``horovodrun --gloo -np 3 --min-np 2 --max-np 3 --host-discovery-script
launch/discover_hosts.sh --network-interfaces lo python -m hvd_qsparse.jobs.train_elastic [flags]``
trains the digits job of ``hvd_qsparse.jobs.train`` with ``--algorithm risgd`` inside
``hvd.elastic.run``: the state (model, optimizer wrapper, sampler) is committed every
``--commit-every`` rounds; when a worker dies the survivors roll back to the last commit,
re-map the chunks and finish. It also runs under plain ``mpirun`` (no elastic driver: a lost
worker then ends the job). Every flag of ``hvd_qsparse.jobs.train`` applies but those of
``NOT_IN_ELASTIC`` (``--metrics``, ``--tensorboard``, ``--label``, ``--straggler-*``), plus:

  --eval-every N        log the test accuracy of the averaged model every N rounds
  --target-accuracy A   report the first round whose accuracy is >= A (needs --eval-every)
  --stop-at-target      end training at that round
"""
import argparse
import logging
import os
import sys
import time

import horovod.torch as hvd
import torch

from hvd_qsparse.algorithms import DistributedOptimizer
from hvd_qsparse.algorithms.risgd_elastic import RiSGDElasticState
from hvd_qsparse.jobs import train as job
from hvd_qsparse.jobs.watchdog import StepWatchdog
from hvd_qsparse.reporting.summary import format_table, run_summary, write_outputs
from hvd_qsparse.workloads.data import load_digits_split
from hvd_qsparse.workloads.models import accuracy, digits_mlp

log = logging.getLogger("hvd_qsparse.jobs.train_elastic")

#: the training job's flags this job has no use for (it writes no per-step rows and slows no
#: rank down, or needs state a joining worker cannot be given): refused when given, never ignored
NOT_IN_ELASTIC = ("metrics", "tensorboard", "label", "straggler_rank", "straggler_sleep", "model", "optimizer", "device",
                  "amp", "buffers", "schedule",
                  # a worker that joins has no outer momentum to take: x̂ would differ across ranks
                  "outer", "outer_lr", "outer_momentum")


def parse_args(argv=None) -> argparse.Namespace:
    """This job's flags, then ``hvd_qsparse.jobs.train``'s (with ``--algorithm risgd``)."""
    own = argparse.ArgumentParser(prog="python -m hvd_qsparse.jobs.train_elastic", add_help=False,
                                  description=__doc__.splitlines()[0])
    own.add_argument("--eval-every", type=int, default=0, metavar="N")
    own.add_argument("--target-accuracy", type=float, default=None, metavar="A")
    own.add_argument("--stop-at-target", action="store_true")
    argv = sys.argv[1:] if argv is None else list(argv)
    if {"-h", "--help"} & set(argv):
        print(__doc__)
    mine, rest = own.parse_known_args(argv)
    args = job.parse_args(["--algorithm", "risgd", *rest])
    if args.algorithm != "risgd":
        own.error(f"--algorithm must be risgd in the elastic job, got {args.algorithm!r}")
    if args.exchange == "sharded":
        own.error("--exchange sharded is not available in the elastic job: its regions and their memories "
                  "follow the number of ranks, which a membership change alters; use auto or allgather")
    unused = [f"--{dest.replace('_', '-')}" for dest in NOT_IN_ELASTIC if dest in args.given]
    if unused:
        own.error(f"{', '.join(unused)}: not used by the elastic job (no per-step rows, no straggler, no outer optimizer); drop them")
    if mine.eval_every < 0:
        own.error(f"--eval-every must be an integer >= 0 (rounds; 0: no evaluation), got {mine.eval_every}")
    if mine.target_accuracy is not None and not (0 < mine.target_accuracy <= 1 and mine.eval_every > 0):
        own.error(f"--target-accuracy must be in (0, 1] and needs --eval-every N > 0, got "
                  f"{mine.target_accuracy} with --eval-every {mine.eval_every}")
    if mine.stop_at_target and mine.target_accuracy is None:
        own.error("--stop-at-target needs --target-accuracy A")
    vars(args).update(vars(mine))
    return args


@hvd.elastic.run
def train_rounds(state: RiSGDElasticState, args, train_set, test_set, curve: list, watchdog: StepWatchdog) -> None:
    """Train from the state's position to the last epoch (or the target), committing as due;
    ``watchdog`` bounds each step, and a reset with its new rendezvous, to ``--step-timeout``."""
    model, opt, sampler = state.model, state.optimizer, state.sampler
    watchdog.rank, watchdog.size = hvd.rank(), hvd.size()
    watchdog.beat(steps=0)
    loss_fn = torch.nn.CrossEntropyLoss()
    while sampler.epoch < args.epochs:
        for batch in sampler:
            opt.zero_grad()
            loss_fn(model(train_set.x[batch]), train_set.y[batch]).backward()
            opt.step()
            watchdog.beat()
            if opt.algorithm_state.at_round_end() and _evaluate(args, opt, model, test_set, curve):
                state.commit()
                return
            if opt.commit_due():
                state.commit()
        if hvd.rank() == 0:
            log.info("epoch %d done: step %d, round %d, %d workers", sampler.epoch, opt.step_count,
                     opt.rounds_done, hvd.size())
        sampler.set_epoch(sampler.epoch + 1)


def _evaluate(args, opt, model, test_set, curve) -> bool:
    """Log the accuracy every ``--eval-every`` rounds; True when training should stop. Every rank
    evaluates the same averaged model, so all reach the same decision without talking."""
    if not args.eval_every or opt.rounds_done % args.eval_every:
        return False
    acc = accuracy(model, test_set.x, test_set.y)
    curve.append((opt.rounds_done, acc))
    if hvd.rank() == 0:
        log.info("round %d: test accuracy %.4f (%d workers)", opt.rounds_done, acc, hvd.size())
    return args.stop_at_target and acc >= args.target_accuracy


def summarize(args, opt, model, test_set, state, curve, wall) -> dict:
    """``hvd_qsparse.jobs.train``'s summary plus rounds, the accuracy curve and the elastic history."""
    summary = run_summary(args, hvd, opt, model, test_set, wall)
    reached = [r for r, acc in curve if args.target_accuracy is not None and acc >= args.target_accuracy]
    summary.update(rounds=opt.rounds_done, redundancy=opt.algorithm_state.redundancy, non_iid=opt.algorithm_state.non_iid,
                   chunks=state.sampler.num_chunks, curve=curve, target_accuracy=args.target_accuracy,
                   rounds_to_target=reached[0] if reached else None, resets=state.resets,
                   memberships=opt.algorithm_state.memberships)
    return summary


def main(argv=None) -> int:
    args = parse_args(argv)
    hvd.init()
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    train_set, test_set = load_digits_split(seed=args.seed)
    model = digits_mlp(hidden=args.hidden, seed=args.seed)
    inner = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    opt = DistributedOptimizer(inner, model.named_parameters(), algorithm="risgd", **args.options)
    state = RiSGDElasticState(model, opt, opt.make_sampler(train_set.y, args.batch_size))
    curve: list = []
    start = time.perf_counter()
    gloo_timeout = float(os.environ.get("HOROVOD_GLOO_TIMEOUT_SECONDS", "30"))
    if hvd.rank() == 0 and 0 < args.step_timeout <= gloo_timeout:
        log.warning("--step-timeout %g is not above HOROVOD_GLOO_TIMEOUT_SECONDS (%g): a lost worker will end the job "
                    "instead of being survived", args.step_timeout, gloo_timeout)
    watchdog = StepWatchdog(args.step_timeout, hvd.rank(), hvd.size(), args.startup_timeout).start()
    train_rounds(state, args, train_set, test_set, curve, watchdog)
    opt.load_synchronized_model()
    summary = summarize(args, opt, model, test_set, state, curve, time.perf_counter() - start)
    if hvd.rank() == 0:
        print(format_table(summary), flush=True)
        print(f"ranks={summary['ranks']} steps={summary['steps']} rounds={summary['rounds']} "
              f"q={summary['redundancy']} p={summary['chunks']} non_iid={summary['non_iid']} "
              f"rounds_to_target={summary['rounds_to_target']} resets={summary['resets']} "
              f"memberships={summary['memberships']}", flush=True)
        write_outputs(args, summary)
    watchdog.finish(hvd.shutdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
