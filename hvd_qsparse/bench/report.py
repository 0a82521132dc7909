"""The benchmark's figures from its runs: time to a target accuracy, Markdown tables, the issue's
targets checked against the figures, and the plots (``hvd_qsparse.reporting.plot``).

Definitions (per run, from its summary and rank 0's per-step metrics):
- train s: Σ step_s, the seconds rank 0 spent in its training steps (forward, backward,
  compression, communication, update); evaluation and logging are left out, so how often a
  run evaluates does not change it. wall s: the job's whole loop, evaluations included.
- to target: train s up to and including the first evaluation step whose test accuracy is at
  least the target (evaluations every ``--eval-every`` steps, so it is an upper bound within
  one such period); "—" when the run never got there.
- compress / comm / compute: mean ms per step in compression, in communication (waiting
  included) and in the rest of the step, as the optimizers time themselves.
- bits/rank: the largest per-rank total; vs dense fp32: 32·d·steps over that.
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


@dataclass
class Row:
    """One run's figures (None where a failed run has none)."""

    name: str
    family: str
    algorithm: str
    error: Optional[str] = None
    accuracy: Optional[float] = None
    steps: Optional[int] = None
    epochs: Optional[int] = None
    bits: Optional[int] = None
    reduction: Optional[float] = None
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
    row = Row(v.name, v.family, v.algorithm, accuracy=summary["test_accuracy"], steps=summary["steps"],
              epochs=steps[-1]["epoch"] + 1 if steps else 0, bits=max(summary["bits_per_rank"]),
              reduction=summary["reduction"], wall_s=summary["wall_time_s"],
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
        if r.get("test_accuracy") is not None and r["test_accuracy"] >= target:
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
    head = ("| variant | test acc | Δ vs dense | steps (epochs) | bits/rank | vs dense fp32 | train s | wall s "
            f"| to {100 * target:g}% (s) | speed-up vs {BASELINE} | bits to target | compress / comm / compute "
            "(ms/step) |")
    columns = head.count("|") - 1
    lines = [head, "|" + "---|" * columns]
    for r in rows:
        if r.error:
            lines.append(f"| {r.name} | failed: {r.error} |" + " |" * (columns - 2))
            continue
        gap = None if base is None else 100 * (r.accuracy - base.accuracy)
        speedup = base.target_s / r.target_s if base and base.target_s and r.target_s else None
        source = "" if r.bits_source.startswith("measured") else " (analytic)"
        lines.append(
            f"| {r.name} | {100 * r.accuracy:.2f}% | {_fmt(gap, '+.2f', ' pt')} | {r.steps} ({r.epochs}) "
            f"| {r.bits:.3e}{source} | {r.reduction:.1f}× | {r.train_s:.1f} | {r.wall_s:.1f} "
            f"| {_fmt(r.target_s, '.1f')} | {_fmt(speedup, '.2f', '×')} | {_fmt(r.target_bits, '.3e')} "
            f"| {_per_step_ms(r)} |")
    return "\n".join(lines)


def _verdict(ok: bool, text: str, miss: str) -> str:
    return f"- {'met' if ok else 'MISSED by ' + miss}: {text}"


def check_targets(rows: List[Row]) -> List[str]:
    """The issue's targets for one setting, each line ``met`` or ``MISSED by`` how much."""
    done = [r for r in rows if not r.error]
    base = next((r for r in done if r.name == BASELINE), None)
    if base is None or base.target_s is None:
        return [f"- not checked: {BASELINE} did not run or never reached the target"]
    lines = _qsparse_targets(done, base)
    for algorithm in dict.fromkeys(r.algorithm for r in done if r.family == "ours"):
        best = max((r for r in done if r.algorithm == algorithm), key=lambda r: r.accuracy)
        gap = 100 * (best.accuracy - base.accuracy)
        lines.append(_verdict(gap >= -2, f"{algorithm} at its best ({best.name}) is {gap:+.2f} pt from dense "
                                         "(target: within 2 pt)", f"{-2 - gap:.2f} pt"))
    return lines


def best_qsparse(done: List[Row], base: Row):
    """``(row, qualified)``: the best Qsparse-local-SGD setting, the first to the target among
    those that keep the bits (≥ 1000×) and accuracy (within 1 pt of ``base``) targets, or among
    all that reached it when none does (``qualified`` False); ``(None, False)`` when none did."""
    reached = [r for r in done if r.algorithm == "qsparse" and r.target_s]
    qualified = [r for r in reached if r.reduction >= 1000 and r.accuracy >= base.accuracy - 0.01]
    best = min(qualified or reached, key=lambda r: r.target_s, default=None)
    return best, bool(qualified)


def _qsparse_targets(done: List[Row], base: Row) -> List[str]:
    best, qualified = best_qsparse(done, base)
    if best is None:
        return ["- MISSED: no Qsparse-local-SGD setting reached the target"]
    speedup = base.target_s / best.target_s
    gap = 100 * (best.accuracy - base.accuracy)
    among = "≥ 1000× fewer bits and within 1 pt" if qualified else "all settings: none has ≥ 1000× and 1 pt"
    lines = [f"- best Qsparse-local-SGD setting (first to the target among {among}): {best.name}",
             _verdict(speedup >= 3, f"{speedup:.2f}× sooner than {BASELINE} ({best.target_s:.1f} s against "
                                    f"{base.target_s:.1f} s; target: 3×)", f"{3 - speedup:.2f}×"),
             _verdict(best.reduction >= 1000, f"{best.reduction:.0f}× fewer bits than dense fp32 (target: 1000×)",
                      f"{1000 - best.reduction:.0f}×"),
             _verdict(gap >= -1, f"accuracy {gap:+.2f} pt from dense (target: within 1 pt)", f"{-1 - gap:.2f} pt")]
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
    # Zoomed on the last 15 points below the target, where the runs part.
    figures = plot(metrics, str(out_dir), ymin=max(0.0, 100 * target - 15), target=100 * target) if metrics else []
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
