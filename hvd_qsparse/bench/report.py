"""The benchmark's figures from its runs: time to a target accuracy, Markdown tables, the issue's
targets checked against the figures, and the plots (``hvd_qsparse.reporting.plot``).

Definitions (per run, from its summary and rank 0's per-step metrics):
- train s: Σ step_s, the seconds rank 0 spent in its training steps (forward, backward,
  compression, communication, update); evaluation and logging are left out, so how often a
  run evaluates does not change it. wall s: the job's whole loop, evaluations included.
- to target: train s up to and including the first evaluation step whose score reaches the
  target: a test accuracy at least, or (the transformer) a validation loss at most, the target
  (evaluations every ``--eval-every`` steps, so it is an upper bound within one such period);
  "—" when the run never got there.
- Δ vs dense: accuracy points, or for a loss the percent by which it is lower (negative:
  higher) than the baseline's.
- compress / comm / compute: mean ms per step in compression, in communication (waiting
  included) and in the rest of the step, as the optimizers time themselves.
- bits/rank: the largest per-rank total sent; vs dense fp32: 32·d·steps over that.
- recv/rank: the largest per-rank total received (the other ranks' bytes that reached it, an
  allgather's fan-out included); vs ring: what a ring allreduce of fp32 delivers to a rank,
  2(R − 1)/R · 32·d·steps, over that (``comm.accounting``).
"""
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Optional

from hvd_qsparse.bench.runner import RunResult
from hvd_qsparse.bench.variants import BASELINE
from hvd_qsparse.reporting.metrics import read_metrics
from hvd_qsparse.reporting.plot import plot

DASH = "—"


@dataclass(frozen=True)
class Metric:
    """How a run's score reads: its key in the summary and metrics rows, its direction, and the
    tolerances the targets allow (in its own unit: accuracy points, or percent of a loss)."""

    key: str
    title: str
    unit: str
    higher_is_better: bool
    qsparse_tolerance: float    # the best Qsparse setting against dense
    algorithm_tolerance: float  # every other algorithm at its best

    def reached(self, score: float, target: float) -> bool:
        return score >= target if self.higher_is_better else score <= target

    def gap(self, score: float, base: float) -> float:
        """How much better than ``base`` (negative: worse), in ``unit``."""
        return 100 * (score - base) if self.higher_is_better else 100 * (base - score) / base

    def show(self, score: float) -> str:
        return f"{100 * score:.2f}%" if self.higher_is_better else f"{score:.4f}"

    def target_text(self, target: float) -> str:
        return f"{100 * target:g}%" if self.higher_is_better else f"loss {target:g}"


METRICS = {"test_accuracy": Metric("test_accuracy", "test acc", "pt", True, 1.0, 2.0),
           "val_loss": Metric("val_loss", "val loss", "%", False, 2.0, 4.0)}


@dataclass
class Row:
    """One run's figures (None where a failed run has none)."""

    name: str
    family: str
    algorithm: str
    error: Optional[str] = None
    score: Optional[float] = None
    metric: str = "test_accuracy"
    steps: Optional[int] = None
    epochs: Optional[int] = None
    bits: Optional[int] = None
    reduction: Optional[float] = None
    received: Optional[int] = None
    received_reduction: Optional[float] = None
    wall_s: Optional[float] = None
    train_s: Optional[float] = None
    compress_s: Optional[float] = None
    communicate_s: Optional[float] = None
    target_s: Optional[float] = None
    target_step: Optional[int] = None
    target_bits: Optional[int] = None
    bits_source: str = "measured: bytes of the buffers handed to the collectives"


def load_row(result: RunResult, target: float) -> Row:
    """The figures of one finished run (its error when it failed)."""
    v = result.variant
    if not result.ok:
        return Row(v.name, v.family, v.algorithm, error=result.error)
    summary = json.loads(result.summary.read_text())
    _, steps = read_metrics(str(result.metrics))
    metric = summary.get("metric", "test_accuracy")
    row = Row(v.name, v.family, v.algorithm, score=summary[metric], metric=metric, steps=summary["steps"],
              epochs=steps[-1]["epoch"] + 1 if steps else 0, bits=max(summary["bits_per_rank"]),
              reduction=summary["reduction"], received=max(summary.get("received_bits_per_rank") or [0]),
              received_reduction=summary.get("received_reduction"), wall_s=summary["wall_time_s"],
              train_s=sum(r["step_s"] for r in steps), compress_s=sum(r["compress_s"] for r in steps),
              communicate_s=sum(r["communicate_s"] for r in steps))
    row.bits_source = summary.get("bits_source", row.bits_source)
    time_to_target(row, steps, target)
    return row


def time_to_target(row: Row, steps: List[dict], target: float) -> None:
    """Fill ``row``'s target fields from rank 0's metrics rows (left None if never reached)."""
    elapsed = 0.0
    for r in steps:
        elapsed += r["step_s"]
        score = r.get(row.metric)
        if score is not None and METRICS[row.metric].reached(score, target):
            row.target_s, row.target_step = elapsed, r["step"] + 1
            row.target_bits = max(r["bits_per_rank"])
            return


def _fmt(value, spec: str, suffix: str = "") -> str:
    return DASH if value is None else f"{value:{spec}}{suffix}"


def _per_step_ms(row: Row) -> str:
    if not row.steps:
        return DASH
    compute = row.train_s - row.compress_s - row.communicate_s
    return " / ".join(f"{1e3 * s / row.steps:.1f}" for s in (row.compress_s, row.communicate_s, compute))


def markdown_table(rows: List[Row], target: float) -> str:
    """The setting's table, one line per run, ratios against ``hvd-fp32`` when it ran."""
    base = next((r for r in rows if r.name == BASELINE and not r.error), None)
    metric = metric_of(rows)
    head = (f"| variant | {metric.title} | Δ vs dense | steps (epochs) | bits/rank | vs dense fp32 | recv/rank "
            f"| vs ring fp32 | train s | wall s "
            f"| to {metric.target_text(target)} (s) | speed-up vs {BASELINE} | bits to target | compress / comm / "
            "compute (ms/step) |")
    columns = head.count("|") - 1
    lines = [head, "|" + "---|" * columns]
    for r in rows:
        if r.error:
            lines.append(f"| {r.name} | failed: {r.error} |" + " |" * (columns - 2))
            continue
        gap = None if base is None else metric.gap(r.score, base.score)
        speedup = base.target_s / r.target_s if base and base.target_s and r.target_s else None
        source = "" if r.bits_source.startswith("measured") else " (analytic)"
        lines.append(
            f"| {r.name} | {metric.show(r.score)} | {_fmt(gap, '+.2f', ' ' + metric.unit)} | {r.steps} ({r.epochs}) "
            f"| {r.bits:.3e}{source} | {r.reduction:.1f}× | {_fmt(r.received, '.3e')} "
            f"| {_fmt(r.received_reduction, '.1f', '×')} | {r.train_s:.1f} | {r.wall_s:.1f} "
            f"| {_fmt(r.target_s, '.1f')} | {_fmt(speedup, '.2f', '×')} | {_fmt(r.target_bits, '.3e')} "
            f"| {_per_step_ms(r)} |")
    return "\n".join(lines)


def metric_of(rows: List[Row]) -> Metric:
    """The metric the rows are scored by (all rows of a setting share the task)."""
    return METRICS[next((r.metric for r in rows if not r.error), "test_accuracy")]


def _verdict(ok: bool, text: str, miss: str) -> str:
    return f"- {'met' if ok else 'MISSED by ' + miss}: {text}"


def check_targets(rows: List[Row]) -> List[str]:
    """The issue's targets for one setting, each line ``met`` or ``MISSED by`` how much."""
    done = [r for r in rows if not r.error]
    base = next((r for r in done if r.name == BASELINE), None)
    if base is None or base.target_s is None:
        return [f"- not checked: {BASELINE} did not run or never reached the target"]
    metric = metric_of(done)
    lines = _qsparse_targets(done, base)
    tol, unit = metric.algorithm_tolerance, metric.unit
    for algorithm in dict.fromkeys(r.algorithm for r in done if r.family == "ours"):
        best = max((r for r in done if r.algorithm == algorithm), key=lambda r: metric.gap(r.score, base.score))
        gap = metric.gap(best.score, base.score)
        lines.append(_verdict(gap >= -tol, f"{algorithm} at its best ({best.name}) is {gap:+.2f} {unit} from dense "
                                           f"(target: within {tol:g} {unit})", f"{-tol - gap:.2f} {unit}"))
    return lines


def best_qsparse(done: List[Row], base: Row):
    """``(row, qualified)``: the best Qsparse-local-SGD setting, the first to the target among
    those that keep the bits (≥ 1000×) and score (within the metric's tolerance of ``base``: 1 pt of
    accuracy, 2% of a loss) targets, or among all that reached it when none does (``qualified``
    False); ``(None, False)`` when none did."""
    metric = METRICS[base.metric]
    reached = [r for r in done if r.algorithm == "qsparse" and r.target_s]
    qualified = [r for r in reached if r.reduction >= 1000
                 and metric.gap(r.score, base.score) >= -metric.qsparse_tolerance - 1e-9]
    best = min(qualified or reached, key=lambda r: r.target_s, default=None)
    return best, bool(qualified)


def _qsparse_targets(done: List[Row], base: Row) -> List[str]:
    best, qualified = best_qsparse(done, base)
    if best is None:
        return ["- MISSED: no Qsparse-local-SGD setting reached the target"]
    metric = METRICS[base.metric]
    tol, unit = metric.qsparse_tolerance, metric.unit
    speedup = base.target_s / best.target_s
    gap = metric.gap(best.score, base.score)
    among = (f"≥ 1000× fewer bits and within {tol:g} {unit}" if qualified
             else f"all settings: none has ≥ 1000× and {tol:g} {unit}")
    lines = [f"- best Qsparse-local-SGD setting (first to the target among {among}): {best.name}",
             _verdict(speedup >= 3, f"{speedup:.2f}× sooner than {BASELINE} ({best.target_s:.1f} s against "
                                    f"{base.target_s:.1f} s; target: 3×)", f"{3 - speedup:.2f}×"),
             _verdict(best.reduction >= 1000, f"{best.reduction:.0f}× fewer bits than dense fp32 (target: 1000×)",
                      f"{1000 - best.reduction:.0f}×"),
             _verdict(gap >= -tol, f"{metric.title} {gap:+.2f} {unit} from dense (target: within {tol:g} {unit})",
                      f"{-tol - gap:.2f} {unit}")]
    for peer in (r for r in done if r.family == "peer" and r.name != BASELINE):
        if peer.target_s is None:
            lines.append(f"- met: sooner than {peer.name}, which never reached the target")
        else:
            lines.append(_verdict(best.target_s < peer.target_s, f"sooner than {peer.name} ({best.target_s:.1f} s "
                                  f"against {peer.target_s:.1f} s)", f"{best.target_s - peer.target_s:.1f} s"))
    return lines


def write_section(out_dir: Path, title: str, rows: List[Row], results: List[RunResult], target: float,
                  network: str) -> str:
    """The setting's Markdown section; also draws its plots into ``out_dir``."""
    metrics = [str(r.metrics) for r in results if r.ok]
    if metric_of(rows).higher_is_better:  # zoomed on the last 15 points below the target, where the runs part
        zoom = {"ymin": max(0.0, 100 * target - 15), "target": 100 * target}
    else:
        zoom = {"ymin": None, "target": target, "metric": "val_loss"}
    figures = plot(metrics, str(out_dir), **zoom) if metrics else []
    links = " · ".join(f"[{Path(f).name}]({out_dir.name}/{Path(f).name})" for f in figures)
    return "\n".join([f"## {title}", "", f"Network: {network}", "", markdown_table(rows, target), "", "Targets:", "",
                      *check_targets(rows), "", f"Plots: {links or DASH}", ""])


def write_results(out: Path, header: List[str], sections: List[str], settings: dict) -> Path:
    """``results.md`` (header, then every setting's section) and ``results.json``: per setting,
    its network (description, bytes through the shaper) and rows."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(
        {name: dict(s, rows=[asdict(r) for r in s["rows"]]) for name, s in settings.items()}, indent=1))
    path = out / "results.md"
    path.write_text("\n".join([*header, "", *sections]))
    return path
