"""``python -m hvd_qsparse.bench.scaling``: per-rank traffic and step time as the ranks grow.

Runs, for every rank count (``--ranks``, oversubscribed on this machine) and every exchange
(``--variants``): Qsparse at H = 1 through the ``allgather`` and the ``sharded`` exchange (the
same compressor and density), the dense fp32 allreduce (Qsparse with the identity compressor)
and DDP's PowerSGD hook, each on the same model, data, seeds and steps, one after the other,
inside a namespace whose loopback is shaped to ``--rate`` (``netns``; ``none``: no limit, TCP on
lo all the same). Writes under ``--out``: every run's files (``np<R>/<variant>.*``), and
``scaling.json``, one row per run: bytes each rank sent and received per step (the largest
over ranks, from the ranks' counters), median seconds per step and in communication, and the
score. Every R runs the same steps per rank (``--epochs`` per rank: R times as many epochs of
an R times smaller shard). ``bench.scaling_model`` calibrates the cost model on these rows and writes the doc.
"""
import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import List

from hvd_qsparse.bench.netns import UNLIMITED, LimitedNamespace, check_rate
from hvd_qsparse.bench.runner import RunResult, run_variant
from hvd_qsparse.bench.variants import PEERS, TRAIN, Variant
from hvd_qsparse.reporting.metrics import read_metrics

#: steps left out of the medians (start-up: first collectives, allocations)
SKIP = 3


def variants(compressor: str, ratio: str) -> List[Variant]:
    """The rows of the sweep: two exchanges of the same compressed rule, dense, PowerSGD."""
    qsparse = ("--algorithm", "qsparse", "--no-progress", "--local-steps", "1")
    sparse = (*qsparse, "--compressor", compressor, "--ratio", ratio)
    return [Variant("allgather", "ours", "qsparse", TRAIN, (*sparse, "--exchange", "allgather")),
            Variant("sharded", "ours", "qsparse", TRAIN, (*sparse, "--exchange", "sharded")),
            Variant("dense", "ours", "qsparse", TRAIN, (*qsparse, "--compressor", "none")),
            Variant("powersgd", "peer", "powersgd", PEERS, ("--peer", "ddp-powersgd"))]


def row(result: RunResult, ranks: int, rate: str) -> dict:
    """One run's figures (its error when it failed)."""
    base = {"variant": result.variant.name, "ranks": ranks, "rate": rate}
    if not result.ok:
        return {**base, "error": result.error}
    summary = json.loads(result.summary.read_text())
    _, steps = read_metrics(str(result.metrics))
    timed = steps[SKIP:] or steps
    count = summary["steps"]
    return {**base, "parameters": summary["parameters"], "steps": count,
            "sent_bytes_per_step": max(summary["bits_per_rank"]) / 8 / count,
            "received_bytes_per_step": max(summary["received_bits_per_rank"]) / 8 / count,
            "step_s": statistics.median(r["step_s"] for r in timed),
            "communicate_s": statistics.median(r["communicate_s"] for r in timed),
            "score": summary[summary.get("metric", "test_accuracy")], "metric": summary.get("metric", "test_accuracy"),
            "exchange": summary.get("exchange")}


def sweep(args) -> List[dict]:
    rows = []
    for ranks in args.ranks:
        for variant in variants(args.compressor, args.ratio):
            if variant.name not in args.variants:
                continue
            out = Path(args.out) / f"{args.rate}-np{ranks}"
            shared = args.shared if "--epochs" in args.shared else [*args.shared, "--epochs", str(args.epochs * ranks)]
            if args.rate == UNLIMITED:
                result = run_variant(variant, ranks, shared, out, timeout=args.timeout)
            else:
                with LimitedNamespace(args.rate) as ns:
                    result = run_variant(variant, ranks, shared, out, prefix=ns.prefix, timeout=args.timeout)
            rows.append(row(result, ranks, args.rate))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hvd_qsparse.bench.scaling", description=__doc__.splitlines()[0])
    p.add_argument("--ranks", default="2,4,8,16", help="comma-separated rank counts")
    p.add_argument("--variants", default="allgather,sharded,dense,powersgd")
    p.add_argument("--compressor", default="topk+sign")
    p.add_argument("--ratio", default="0.01")
    p.add_argument("--rate", default=UNLIMITED, help="tc rate of the shared loopback (1gbit, ...) or none")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    p.add_argument("--epochs", type=int, default=1,
                   help="epochs per rank: a run on R ranks trains R times as many (each rank's shard is 1/R "
                        "of the data), so every R takes the same steps; --epochs among the job flags overrides")
    p.add_argument("--out", default="runs/scaling")
    args, shared = p.parse_known_args(argv)
    args.ranks = [int(r) for r in args.ranks.split(",")]
    args.variants = args.variants.split(",")
    args.rate = check_rate(args.rate)
    args.shared = shared or ["--model", "mlp", "--hidden", "512"]
    rows = sweep(args)
    out = Path(args.out) / f"scaling-{args.rate}.json"
    out.write_text(json.dumps(rows, indent=1))
    print(f"wrote {out}")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
