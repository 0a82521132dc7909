"""The training job: ``horovodrun -np 2 python -m hvd_qsparse.jobs.train [flags]``.

Trains a model (``--model``: an MLP on scikit-learn's digits, a ResNet-style CNN on real MNIST
images, a character-level transformer on the standard library's sources) with the chosen
algorithm and compressor, and ends with a table: test accuracy (the transformer: validation
loss), bits sent per rank, the ratio to dense fp32 allreduce, wall time. ``--json PATH`` also
writes the summary for scripts and tests.
"""
import argparse
import functools
import logging
import os
import sys
import time

import torch

from hvd_qsparse.algorithms import DistributedOptimizer, algorithm_class, available_algorithms
from hvd_qsparse.compression import available
from hvd_qsparse.jobs import config
from hvd_qsparse.jobs.device import AMP, DEVICES, Precision, check_device_flag, resolve_device
from hvd_qsparse.jobs.workload import (BUFFER_MODES, INNER_OPTIMIZERS, SCHEDULES, check_model_flags,
                                      make_inner_optimizer, make_schedule, make_task)
from hvd_qsparse.jobs.flags import (check_algorithm_flags, check_compressor_flags, check_number, check_output_paths,
                                   given_flags)
from hvd_qsparse.jobs.watchdog import StepWatchdog
from hvd_qsparse.jobs.world import BACKENDS, join_world, world_backend
from hvd_qsparse.reporting.metrics import check_path
from hvd_qsparse.reporting.summary import format_table, make_recorder, run_setting, run_summary, write_outputs
from hvd_qsparse.workloads.data import shard_batches
from hvd_qsparse.workloads.tasks import TASKS

log = logging.getLogger("hvd_qsparse.jobs.train")


#: the largest --hidden: the MLP's first layer then has 64·65536 weights
MAX_HIDDEN = 1 << 16


def build_parser() -> argparse.ArgumentParser:
    p = config.JobArgumentParser(prog="python -m hvd_qsparse.jobs.train", description=__doc__.splitlines()[0])
    p.add_argument("--algorithm", default="qsparse", choices=available_algorithms())
    p.add_argument("--compressor", default="topk+sign", choices=available(),
                   help="operator QComp_k (see README's table)")
    p.add_argument("--ratio", type=float, default=0.05, help="fraction kept by topk/randk, in (0, 1]")
    p.add_argument("--levels", type=int, default=256, help="QSGD levels s, >= 1")
    p.add_argument("--local-steps", type=int, default=4, help="H: steps between synchronizations, >= 1")
    p.add_argument("--warmup-steps", type=int, default=0, help="first steps dense and uncompressed")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--model", default="mlp", choices=list(TASKS),
                   help="mlp: digits MLP; resnet: ResNet-style CNN on 5,000 MNIST images; transformer: "
                        "character-level LM on the Python standard library's sources")
    p.add_argument("--hidden", type=int, default=128,
                   help="--model mlp: width of the first hidden layer (128: 17k parameters; 3072: 4.9M)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="per rank (default: 16 windows of 64 characters for the transformer, else 32)")
    p.add_argument("--optimizer", default="auto", choices=INNER_OPTIMIZERS,
                   help="the wrapped torch optimizer (auto: AdamW for the transformer, SGD otherwise)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: SGD 0.05, AdamW 0.002)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD's momentum")
    p.add_argument("--schedule", default="constant", choices=SCHEDULES,
                   help="learning rate over the run: constant, or cosine decay to 0")
    p.add_argument("--device", default="auto", choices=DEVICES,
                   help="auto: one GPU per local rank when CUDA is visible, else the CPU")
    p.add_argument("--amp", default="none", choices=AMP,
                   help="autocast forward and loss in bf16, or fp16 with a GradScaler")
    p.add_argument("--buffers", default="sync", choices=BUFFER_MODES,
                   help="sync: BatchNorm statistics broadcast after gradient exchanges and averaged at model "
                        "syncs (counted in bits); local: each rank keeps its own (rank 0's model is scored)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--straggler-rank", type=int, default=-1, metavar="R",
                   help="rank R sleeps --straggler-sleep seconds after every step (a slow worker); -1: none")
    p.add_argument("--straggler-sleep", type=float, default=0.0, metavar="SECONDS", help="see --straggler-rank")
    p.add_argument("--step-timeout", type=float, default=600.0, metavar="SECONDS",
                   help="end the job (exit code 1, on every rank) when no step finishes for this long: a stalled "
                        "network or a stuck rank; 0: wait for ever")
    p.add_argument("--startup-timeout", type=float, default=120.0, metavar="SECONDS",
                   help="the same until the first step has finished (data, model, first broadcast and step); "
                        "the larger of it and --step-timeout applies")
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="whose collectives: horovod (horovodrun, mpirun, Slurm), torch (torch.distributed, Gloo on "
                        "CPU, NCCL on CUDA: torchrun), auto: torch when torchrun started the job, else horovod")
    p.add_argument("--json", metavar="PATH", help="write the summary as JSON (rank 0)")
    p.add_argument("--bits-log", metavar="PATH", help="per-step bits of every rank as JSON lines (written by rank 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--config", metavar="FILE", help="YAML or TOML file of flags (flags given too win)")
    p.add_argument("--metrics", metavar="PATH", help="per-step metrics, .jsonl or .csv (rank 0)")
    p.add_argument("--eval-every", type=int, default=0, metavar="N",
                   help="steps between test-accuracy rows in --metrics (default: once per epoch)")
    p.add_argument("--tensorboard", metavar="DIR", help="also write the metrics as TensorBoard scalars")
    p.add_argument("--label", help="the run's name in --metrics and plots (default: algorithm, compressor, H)")
    for name in available_algorithms():
        algorithm_class(name).add_arguments(p.add_argument_group(f"--algorithm {name}"))
    return p


def parse_args(argv=None) -> argparse.Namespace:
    """Flags, validated before any rank starts training (bad values exit with the flag's name)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    config_path = pre.parse_known_args(argv)[0].config
    if config_path:
        try:
            from_file, origins = config.to_argv(config.load(config_path), parser)
        except ValueError as err:
            parser.error(str(err))
        typed = given_flags(parser, argv)
        parser.origins = {flag: where for flag, where in origins.items()
                          if not given_flags(parser, [flag]) & typed}  # a flag typed as well wins
        argv = from_file + argv
    args = parser.parse_args(argv)
    args.given = given_flags(parser, argv)
    check_flags(parser, args, args.given)
    return args


def check_flags(parser: argparse.ArgumentParser, args: argparse.Namespace, given) -> None:
    """Every value in range before any rank trains (a usage error, exit code 2, otherwise);
    ``args.options`` becomes the algorithm's constructor options."""
    if args.metrics:
        try:
            check_path(args.metrics)
        except ValueError as err:
            parser.error(str(err))
    elif args.tensorboard:
        parser.error("--tensorboard writes the --metrics rows as TensorBoard scalars: give --metrics too")
    check_output_paths(parser, args, ("--json", "--bits-log", "--metrics"))
    check_compressor_flags(parser, args)
    check_model_flags(parser, args, given)
    for flag, value, low in (("--local-steps", args.local_steps, 1), ("--warmup-steps", args.warmup_steps, 0),
                             ("--epochs", args.epochs, 1), ("--batch-size", args.batch_size, 1),
                             ("--hidden", args.hidden, 2),
                             ("--eval-every", args.eval_every, 0), ("--straggler-rank", args.straggler_rank, -1)):
        if value < low:
            parser.error(f"{flag} must be an integer >= {low}, got {value}")
    if args.hidden > MAX_HIDDEN:
        parser.error(f"--hidden must be at most {MAX_HIDDEN}, got {args.hidden}")
    check_number(parser, "--lr", args.lr, 0.0, low_open=True)
    try:
        check_device_flag(args.device)
    except ValueError as err:
        parser.error(str(err))
    check_number(parser, "--momentum", args.momentum, 0.0, 1.0)
    check_number(parser, "--straggler-sleep", args.straggler_sleep, 0.0)
    check_number(parser, "--step-timeout", args.step_timeout, 0.0)
    check_number(parser, "--startup-timeout", args.startup_timeout, 0.0)
    args.options = check_algorithm_flags(parser, args, given)


def train(args: argparse.Namespace, hvd, watchdog: StepWatchdog) -> dict:
    """Run the job on this rank, beating ``watchdog`` once per step; returns the summary
    (identical on every rank)."""
    if args.straggler_rank >= hvd.size():
        raise ValueError(f"--straggler-rank must be -1 or a rank in [0, {hvd.size() - 1}], got {args.straggler_rank}")
    device = resolve_device(args.device, hvd.local_rank(), hvd.local_size())
    task = make_task(args)
    train_set, test_set = (split.to(device) for split in task.splits(args.seed))
    model = task.build_model(args.seed).to(device)
    opt = DistributedOptimizer(make_inner_optimizer(args, model), model.named_parameters(),
                               algorithm=args.algorithm, backend=world_backend(args.backend),
                               named_buffers=model.named_buffers() if args.buffers == "sync" else None,
                               **args.options)
    opt.broadcast_state(root_rank=0)
    precision = Precision(args.amp, device)
    batches_for = epoch_batches(opt, args, train_set, hvd, task)
    steps_per_epoch = len(batches_for(0))
    bar = _progress(args, hvd, args.epochs * steps_per_epoch)
    recorder = make_recorder(args, hvd, opt, model, test_set, steps_per_epoch, task)
    schedule = make_schedule(args, opt, args.epochs * steps_per_epoch)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        for batch in batches_for(epoch):
            step_start = time.perf_counter()
            opt.zero_grad()
            with precision.autocast():
                loss = task.loss(model(train_set.x[batch]), train_set.y[batch])
            precision.backward_and_step(loss, opt)
            if schedule is not None:
                schedule.step()
            if hvd.rank() == args.straggler_rank:
                time.sleep(args.straggler_sleep)
            if recorder is not None:
                now = time.perf_counter()
                recorder.after_step(epoch, loss.item(), now - step_start, now - start)
            if bar is not None:
                bar.set_postfix(epoch=epoch, loss=f"{loss.item():.3f}", refresh=False)
                bar.update()
            watchdog.beat()
    wall = time.perf_counter() - start
    if bar is not None:
        bar.close()
    if recorder is not None and recorder.log is not None:
        recorder.log.close()
    opt.load_synchronized_model()
    return {**run_summary(args, hvd, opt, model, test_set, wall, task), "backend": world_backend(args.backend)}


def epoch_batches(opt, args, train_set, hvd, task):
    """``epoch -> this rank's batches``: from the algorithm's own sampler when it makes one
    (``make_sampler``: RI-SGD's redundant, optionally label-sorted chunks), else a disjoint shard."""
    if hasattr(opt, "make_sampler"):
        return opt.make_sampler(task.labels(train_set).cpu(), args.batch_size).epoch_batches
    return functools.partial(shard_batches, len(train_set), hvd.rank(), hvd.size(), args.batch_size, args.seed)


def _progress(args, hvd, total):
    if hvd.rank() != 0 or args.no_progress:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=f"{args.algorithm} {run_setting(args)}", file=sys.stderr)


def main(argv=None) -> int:
    args = parse_args(argv)
    hvd = join_world(args.backend, cuda=args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()))
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    watchdog = StepWatchdog(args.step_timeout, hvd.rank(), hvd.size(), args.startup_timeout).start()
    try:
        summary = train(args, hvd, watchdog)
    except Exception:
        if hvd.size() == 1:
            raise
        # The other ranks would wait in a collective (or in MPI_Finalize) forever: leave at once,
        # non-zero, so the launcher ends the whole job.
        log.exception("rank %d of %d failed; ending the job", hvd.rank(), hvd.size())
        logging.shutdown()
        os._exit(1)
    if hvd.rank() == 0:
        print(format_table(summary), flush=True)
        print(f"ranks={summary['ranks']} steps={summary['steps']} rounds={summary['communication_rounds']} "
              f"d={summary['parameters']} bits per rank={summary['bits_per_rank']} "
              f"dense fp32 allreduce={summary['dense_fp32_bits_per_rank']} "
              f"received per rank={summary['received_bits_per_rank']} "
              f"ring fp32 received={summary['ring_fp32_received_bits_per_rank']} "
              f"agreement flags per rank={summary['control_bits_per_rank']} "
              f"exchange={summary['exchange']}{' (auto)' if summary['exchange_choice'] else ''} "
              f"backend={summary['backend']}", flush=True)
        write_outputs(args, summary)
    # Shut down here, under the watchdog, not at interpreter exit where it could hang unseen.
    watchdog.finish(hvd.shutdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
