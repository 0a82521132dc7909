"""A training run's closing summary: what every job of this package (``train``, ``train_elastic``,
the benchmark's peers) prints and writes at the end, and the per-step recorder behind
``--metrics``.

``comm`` is anything with ``rank()``, ``size()`` and ``allgather_object(obj, name=...)``:
``horovod.torch`` itself, or the benchmark's mpi4py stand-in for the DDP peers.
"""
import json

from hvd_qsparse.algorithms import algorithm_class, available_algorithms
from hvd_qsparse.comm import ring_share
from hvd_qsparse.files import atomic_write
from hvd_qsparse.optim import setting as optim_setting
from hvd_qsparse.reporting.metrics import MetricsLog, StepRecorder
from hvd_qsparse.workloads.models import accuracy

def describe_setting(options: dict, algorithm=None) -> str:
    """One line for an algorithm's options (``optim.setting``), as ``algorithm`` describes them."""
    if algorithm in available_algorithms():
        return algorithm_class(algorithm).describe_setting(options)
    return optim_setting.describe_setting(options)


def make_recorder(args, comm, opt, model, test_set, steps_per_epoch, task=None):
    """The metrics recorder on every rank when ``--metrics`` is given (rank 0 writes), else None.
    ``task`` (a ``workloads.base.Task``) scores the model; None: test accuracy."""
    if not args.metrics:
        return None
    log = None
    if comm.rank() == 0:
        meta = {k: v for k, v in vars(args).items() if k not in ("options", "given")}
        meta["label"] = args.label or f"{args.algorithm} {run_setting(args)}"
        log = MetricsLog(args.metrics, args.tensorboard, meta=meta)
    return StepRecorder(opt, log, lambda: _score(task, model, test_set), comm.allgather_object,
                        args.eval_every or steps_per_epoch, metric=_metric_field(task))


def run_setting(args) -> str:
    """The run's setting line: ``args.setting`` when the job names it (the peers), else from the
    algorithm's options."""
    return getattr(args, "setting", None) or describe_setting(getattr(args, "options", {}),
                                                              getattr(args, "algorithm", None))


def _score(task, model, test_set) -> float:
    return accuracy(model, test_set.x, test_set.y) if task is None else task.evaluate(model, test_set)


def _metric_field(task) -> str:
    """The summary's and metrics rows' key for the score: ``test_accuracy`` or ``val_loss``."""
    return "test_accuracy" if task is None or task.metric == "accuracy" else task.metric


def run_summary(args, comm, opt, model, test_set, wall, task=None) -> dict:
    """The summary, identical on every rank: the final score (test accuracy, or the validation
    loss of a language model; checked equal on all ranks), bits each rank sent and received,
    the dense fp32 figures and every rank's per-step history.

    ``reduction`` compares what a rank sent with a dense fp32 allreduce's input, 32·d bits per
    step (the papers' "bits per worker"); ``received_reduction`` compares what reached a rank
    with what reaches it in a ring allreduce of fp32, 2(R − 1)/R · 32·d bits per step
    (``comm.accounting``), the figure where an allgather's fan-out shows (None with one rank).

    Raises:
        RuntimeError: the ranks ended with different models (with ``--buffers local`` their
            BatchNorm statistics may differ by design: rank 0's score is kept and the spread
            reported instead).
    """
    bits = opt.bits
    per_rank = comm.allgather_object(bits.total_sent, name="summary.bits")
    steps = opt.step_count
    # A dense fp32 data-parallel step allreduces d entries and, as DDP does, broadcasts the
    # buffers this run keeps equal (BatchNorm's statistics): 32 bits per entry of both.
    buffer_entries = opt.buffers.numel if getattr(opt, "buffers", None) else 0
    dense_bits = 32 * (opt.flat_numel() + buffer_entries) * steps
    received = comm.allgather_object(bits.total_received, name="summary.received")
    # The dense step's received side: the ring's share of the allreduce, and the buffers'
    # broadcast at every rank but the root.
    ring_received = (ring_share(4 * opt.flat_numel(), comm.size()) * 8 + 32 * buffer_entries) * steps
    score = _score(task, model, test_set)
    scores = comm.allgather_object(score, name="summary.score")
    spread = max(scores) - min(scores)
    if spread > 1e-9 and getattr(args, "buffers", "sync") != "local":
        raise RuntimeError(f"ranks disagree on the final model: scores {scores}")
    field = _metric_field(task)
    return {"algorithm": args.algorithm, "setting": run_setting(args), "compressor": args.compressor,
            "ratio": args.ratio, "levels": args.levels, "local_steps": _local_steps(args), "ranks": comm.size(),
            "model": getattr(args, "model", "mlp"), "metric": field, "score_spread": spread,
            "steps": steps, "parameters": opt.flat_numel(), "buffer_entries": buffer_entries, "test_accuracy": scores[0] if field == "test_accuracy"
            else None, field: scores[0], "bits_per_rank": per_rank,
            "control_bits_per_rank": comm.allgather_object(bits.total_control, name="summary.control"),
            "analytic_bits_rank0": bits.total_analytic if comm.rank() == 0 else None,
            "dense_fp32_bits_per_rank": dense_bits, "reduction": dense_bits / max(1, max(per_rank)),
            "received_bits_per_rank": received, "ring_fp32_received_bits_per_rank": ring_received,
            "received_reduction": ring_received / max(1, max(received)) if comm.size() > 1 else None,
            "exchange": getattr(getattr(opt, "exchange", None), "exchange_name", None),
            "exchange_choice": getattr(opt, "exchange_choice", None),
            "communication_rounds": len(bits.history), "wall_time_s": wall,
            "history": _all_ranks_history(comm, bits)}


def _local_steps(args) -> int:
    """H of the run: the algorithm's ``local_steps``, 1 for one that talks every step (it takes
    no ``--local-steps``), a peer's own flag when the job names its setting."""
    options = getattr(args, "options", None)
    if options and not getattr(args, "setting", None):
        return options.get("local_steps", 1)
    return getattr(args, "local_steps", 1)


def _all_ranks_history(comm, bits) -> list:
    """Every rank's per-step bits, as rows tagged with the rank."""
    mine = [dict(vars(s), rank=comm.rank()) for s in bits.history]
    return [row for rows in comm.allgather_object(mine, name="summary.history") for row in rows]


def format_table(summary: dict) -> str:
    """The closing table, one row."""
    width = max(24, len(summary["setting"]))
    accuracy_score = summary.get("metric", "test_accuracy") == "test_accuracy"
    title = "test acc" if accuracy_score else "val loss"
    score = (f"{100 * summary['test_accuracy']:>7.2f}%" if accuracy_score
             else f"{summary[summary['metric']]:>8.4f}")
    head = (f"{'algorithm':<10} {'setting':<{width}} {title:>8} {'bits/rank':>12} {'vs dense fp32':>14} "
            f"{'recv/rank':>12} {'vs ring fp32':>13} {'wall':>7}")
    received = summary.get("received_bits_per_rank") or [0]
    versus_ring = summary.get("received_reduction")
    ring = "-" if versus_ring is None else f"{versus_ring:.1f}x"
    row = (f"{summary['algorithm']:<10} {summary['setting']:<{width}} {score} "
           f"{max(summary['bits_per_rank']):>12.4g} {summary['reduction']:>13.1f}x "
           f"{max(received):>12.4g} {ring:>13} {summary['wall_time_s']:>6.1f}s")
    return f"{head}\n{row}"


def write_outputs(args, summary) -> None:
    """``--json`` (the summary without the history) and ``--bits-log`` (the history, a JSON line
    per rank and step); rank 0 calls it."""
    history = summary.pop("history")
    if args.json:
        with atomic_write(args.json) as fh:
            json.dump(summary, fh, indent=1)
    if args.bits_log:
        with atomic_write(args.bits_log) as fh:
            for row in history:
                fh.write(json.dumps(row) + "\n")
