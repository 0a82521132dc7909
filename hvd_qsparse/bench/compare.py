"""``python -m hvd_qsparse.bench.compare``: our algorithms against the peers, bits and time to accuracy
under a limited network.

For every bandwidth (``--bandwidths``: tc rates such as ``1gbit``, or ``none``) and rank count
(``--ranks``), runs every chosen variant (``--variants``; ``--list`` shows them) on the same
task, split, seeds and model, one after the other, each under ``mpirun`` inside a network
namespace whose loopback is shaped to that rate (``netns``; needs root). Then writes, under
``--out``:

- ``results.md``: when, where and how it ran, and per setting a table (test accuracy, or the
  transformer's validation loss, steps
  and epochs, bits per rank and the ratio to dense fp32, train and wall seconds, time and
  bits to the ``--target`` score, the speed-up against Horovod's dense allreduce, the
  compress / communicate / compute split per step) and the issue's targets, met or missed
  by how much; ``results.json``: the same rows;
- ``<bandwidth>-np<R>/``: each run's summary (``.json``), per-step metrics (``.jsonl``) and
  output (``.log``), and ``accuracy_vs_bits.png`` / ``accuracy_vs_time.png``.

The runs share the two cores of this machine with nothing else only if nothing else runs:
take figures on a quiet machine. Exit code 0 when every run finished, 1 when some failed
(their rows say why), 2 for bad flags or when the namespaces cannot be made.
"""
import argparse
import datetime
import os
import platform
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from hvd_qsparse.bench import variants as variant_table
from hvd_qsparse.bench.netns import (UNLIMITED, LimitedNamespace, NamespaceError, check_can_create,
                                     check_rate)
from hvd_qsparse.bench.overview import overview_section
from hvd_qsparse.bench.report import load_row, write_results, write_section
from hvd_qsparse.bench.runner import ROOT, run_variant
from hvd_qsparse.jobs.flags import check_compressor_flags
from hvd_qsparse.jobs.workload import SCHEDULES
from hvd_qsparse.workloads.tasks import TASKS

PROG = "python -m hvd_qsparse.bench.compare"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--variants", default="all", help="comma-separated names or patterns, or all, peers, ours")
    p.add_argument("--bandwidths", default="10gbit,1gbit,100mbit", help="comma-separated tc rates, or none")
    p.add_argument("--ranks", default="2,4", help="comma-separated rank counts")
    p.add_argument("--model", default="mlp", choices=list(TASKS), help="the task every variant trains")
    p.add_argument("--schedule", default="constant", choices=SCHEDULES, help="learning rate over the run")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--hidden", type=int, default=3072, help="--model mlp: width (3072 gives 4.9M parameters)")
    p.add_argument("--ratio", type=float, default=0.01, help="fraction topk keeps (our variants)")
    p.add_argument("--levels", type=int, default=256, help="QSGD levels (our variants)")
    p.add_argument("--powersgd-rank", type=int, default=4, help="ddp-powersgd's matrix_approximation_rank")
    p.add_argument("--batch-size", type=int, default=None, help="per rank (default: the job's for the model)")
    p.add_argument("--lr", type=float, default=None, help="default: the job's for the model's optimizer")
    p.add_argument("--momentum", type=float, default=None, help="SGD's momentum (default: the job's, 0.9)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=5, help="steps between evaluations of the score")
    p.add_argument("--target", type=float, default=0.95,
                   help="the target: a test accuracy in (0, 1], or for --model transformer a validation loss > 0")
    p.add_argument("--out", default="runs/bench", help="results folder")
    p.add_argument("--run-timeout", type=float, default=1800.0, help="seconds before a run is ended")
    p.add_argument("--list", action="store_true", help="print the variants and exit")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    """Flags, checked before anything runs (a bad value exits with code 2 and the flag's name)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.variant_list = variant_table.select(args.variants)
        args.bandwidth_list = [check_rate(b.strip(), "--bandwidths") for b in args.bandwidths.split(",") if b.strip()]
        args.rank_list = [_positive_int(r, "--ranks") for r in args.ranks.split(",") if r.strip()]
    except ValueError as err:
        parser.error(str(err))
    check_compressor_flags(parser, args)
    if not args.bandwidth_list or not args.rank_list:
        parser.error("--bandwidths and --ranks need at least one value each")
    for flag, value, low in (("--epochs", args.epochs, 1), ("--hidden", args.hidden, 2),
                             ("--eval-every", args.eval_every, 1), ("--powersgd-rank", args.powersgd_rank, 1),
                             ("--batch-size", args.batch_size or 1, 1)):
        if value < low:
            parser.error(f"{flag} must be an integer >= {low}, got {value}")
    if args.model == "transformer":
        if not args.target > 0:
            parser.error(f"--target must be a validation loss > 0 for --model transformer, got {args.target}")
    elif not 0 < args.target <= 1:
        parser.error(f"--target must be a test accuracy in (0, 1], got {args.target}")
    if not args.run_timeout > 0:
        parser.error(f"--run-timeout must be > 0 seconds, got {args.run_timeout}")
    return args


def _positive_int(text: str, flag: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{flag}: {text.strip()!r} is not a rank count (an integer >= 1)")
    return value


def shared_flags(args, variant) -> list:
    """The flags every variant of a program gets from the command line."""
    flags = ["--model", args.model, "--schedule", args.schedule, "--epochs", args.epochs, "--seed", args.seed,
             "--eval-every", args.eval_every]
    if args.model == "mlp":  # the other models take no --hidden
        flags += ["--hidden", args.hidden]
    for flag, value in (("--batch-size", args.batch_size), ("--lr", args.lr), ("--momentum", args.momentum)):
        if value is not None:  # else each program takes the job's default for the model
            flags += [flag, value]
    if variant.module == variant_table.TRAIN:
        flags += ["--ratio", args.ratio, "--levels", args.levels]
    else:
        flags += ["--powersgd-rank", args.powersgd_rank]
    return [str(f) for f in flags]


@contextmanager
def network(bandwidth: str):
    """The shaped namespace for runs at ``bandwidth``, or None for no limit."""
    if bandwidth == UNLIMITED:
        yield None
        return
    with LimitedNamespace(bandwidth) as ns:
        yield ns


def header(args, argv) -> list:
    """When, where and how: the lines ``results.md`` starts with."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join([PROG, *(argv if argv is not None else sys.argv[1:])])
    dirty = " (with local changes)" if _git("status", "--porcelain") else ""
    return ["# hvd_qsparse: ours against the peers", "",
            f"- date: {now}", f"- machine: {_machine()}", f"- software: {_software()}",
            f"- commit: {_git('rev-parse', '--short', 'HEAD')}{dirty}",
            f"- command: `{command}`",
            (f"- task: --model {args.model}" + (f" of width {args.hidden}" if args.model == "mlp" else "") +
             f", {args.epochs} epochs, {args.schedule} learning rate, batch {args.batch_size or 'default'} per rank, "
             f"lr {args.lr or 'default'} momentum {args.momentum or 'default'}, seed {args.seed}; topk ratio "
             f"{args.ratio}, QSGD levels "
             f"{args.levels}, PowerSGD rank {args.powersgd_rank}; evaluation every {args.eval_every} steps; "
             f"target {_target_text(args)}")]


def _target_text(args) -> str:
    return f"validation loss {args.target:g}" if args.model == "transformer" else f"{100 * args.target:g}%"


def _machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    mem = next((line.split()[1] for line in _read("/proc/meminfo").splitlines() if line.startswith("MemTotal")), "0")
    return f"{cpu}, {os.cpu_count()} cores, {int(mem) / 2**20:.0f} GiB, {platform.system()} {platform.release()}"


def _software() -> str:
    import horovod
    import torch
    mpi = subprocess.run(["mpirun", "--version"], capture_output=True, text=True, check=False).stdout.splitlines()[:1]
    return f"Python {platform.python_version()}, torch {torch.__version__}, horovod {horovod.__version__}, " \
           f"{mpi[0] if mpi else 'mpirun ?'}"


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _git(*args: str) -> str:
    proc = subprocess.run(["git", *args], capture_output=True, text=True, cwd=str(ROOT), check=False)
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


def run_setting(args, ranks: int, prefix: list, out: Path) -> list:
    """Every chosen variant at one (bandwidth, ranks); returns the runs' results."""
    results = []
    for variant in args.variant_list:
        result = run_variant(variant, ranks, shared_flags(args, variant), out, prefix, args.run_timeout)
        status = f"failed: {result.error}" if result.error else "done"
        print(f"[{out.name}] {variant.name}: {status} in {result.seconds:.0f}s", flush=True)
        results.append(result)
    return results


def run_all(args, argv) -> int:
    """Every setting, one after the other; ``results.md`` is rewritten after each. Returns the
    number of failed runs."""
    out, top = Path(args.out), header(args, argv)
    sections, settings, failed = [], {}, 0
    for bandwidth in args.bandwidth_list:
        with network(bandwidth) as ns:
            for ranks in args.rank_list:
                folder = out / f"{bandwidth}-np{ranks}"
                before = ns.sent_bytes() if ns else 0
                results = run_setting(args, ranks, ns.prefix if ns else [], folder)
                shaped = ns.sent_bytes() - before if ns else None
                described = (f"namespace {ns.name}, `{ns.describe()}`, {shaped} bytes through the shaper"
                             if ns else "no limit (loopback, TCP)")
                rows = [load_row(r, args.target) for r in results]
                failed += sum(1 for r in results if not r.ok)
                sections.append(write_section(folder, f"{bandwidth} · {ranks} ranks", rows, results, args.target,
                                              described))
                settings[folder.name] = {"bandwidth": bandwidth, "ranks": ranks, "network": described,
                                         "shaped_bytes": shaped, "rows": rows}
                overview = [overview_section(settings)] if len(settings) > 1 else []
                path = write_results(out, top, overview + sections, settings)
                print(f"[{folder.name}] written to {path}", flush=True)
    print(path.read_text())
    return failed


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        for v in variant_table.VARIANTS:
            print(f"{v.name:<28} {v.family:<5} python -m {v.module} {' '.join(v.flags)}")
        return 0
    # A plain SIGTERM would skip the `with` blocks that end the runs and remove the namespaces.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        if any(b != UNLIMITED for b in args.bandwidth_list):
            check_can_create()
        return 1 if run_all(args, argv) else 0
    except NamespaceError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
