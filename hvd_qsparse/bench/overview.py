"""One table across the benchmark's settings (bandwidth × ranks): per setting, the dense
baseline's and the fastest peer's time to the target, the best Qsparse-local-SGD setting with its
speed-up, bits and accuracy, and how many of the issue's targets held.

``python -m hvd_qsparse.bench.overview RESULTS.json...`` prints it for the ``results.json`` of
one or several benchmark invocations (a later file wins where two hold the same setting), e.g.
the full run plus a 100 Mbit/s run with fewer variants; ``results.md`` starts with it whenever a
run has more than one setting.
"""
import argparse
import json
import sys
from typing import Dict, List

from hvd_qsparse.bench.report import DASH, METRICS, Row, best_qsparse, check_targets
from hvd_qsparse.bench.variants import BASELINE

HEAD = ("| setting | dense fp32 to target (s) | fastest peer (s) | best Qsparse setting | its time (s) | "
        "vs dense | vs fastest peer | fewer bits | Δ score vs dense | targets met |")


def _seconds(value) -> str:
    return DASH if value is None else f"{value:.1f}"


def overview_row(name: str, rows: List[Row]) -> str:
    """The Markdown row of one setting."""
    done = [r for r in rows if not r.error]
    base = next((r for r in done if r.name == BASELINE), None)
    peers = [r for r in done if r.family == "peer" and r.name != BASELINE and r.target_s]
    fastest = min(peers, key=lambda r: r.target_s, default=None)
    peer_cell = f"{fastest.name} {fastest.target_s:.1f}" if fastest else DASH
    verdicts = check_targets(rows)
    met = sum(line.startswith("- met") for line in verdicts)
    missed = sum(line.startswith("- MISSED") for line in verdicts)
    counted = f"{met} of {met + missed}" if met + missed else DASH
    best = best_qsparse(done, base)[0] if base is not None and base.target_s else None
    if best is None:
        return (f"| {name} | {_seconds(base.target_s if base else None)} | {peer_cell} | {DASH} | {DASH} | {DASH} "
                f"| {DASH} | {DASH} | {DASH} | {counted} |")
    vs_peer = f"{fastest.target_s / best.target_s:.2f}×" if fastest else DASH
    return (f"| {name} | {base.target_s:.1f} | {peer_cell} | {best.name} | {best.target_s:.1f} | "
            f"{base.target_s / best.target_s:.2f}× | {vs_peer} | {best.reduction:.0f}× | "
            f"{METRICS[base.metric].gap(best.score, base.score):+.2f} {METRICS[base.metric].unit} | {counted} |")


def overview_section(settings: Dict[str, dict]) -> str:
    """``## Overview``: a row per setting, in the order given (values hold ``rows``: Row list)."""
    rule = "|" + "---|" * (HEAD.count("|") - 1)
    lines = [overview_row(name, s["rows"]) for name, s in settings.items()]
    return "\n".join(["## Overview", "", HEAD, rule, *lines, ""])


def load_settings(paths: List[str]) -> Dict[str, dict]:
    """The settings of several ``results.json`` files, rows as ``Row``; later files win."""
    settings: Dict[str, dict] = {}
    for path in paths:
        with open(path) as fh:
            for name, setting in json.load(fh).items():
                settings[name] = dict(setting, rows=[Row(**_renamed(row)) for row in setting["rows"]])
    return settings


def _renamed(row: dict) -> dict:
    """A row as ``Row`` takes it; files written before rows had a ``metric`` call the score ``accuracy``."""
    row = dict(row)
    if "accuracy" in row:
        row["score"] = row.pop("accuracy")
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hvd_qsparse.bench.overview", description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", metavar="RESULTS.json", help="the benchmark's results.json files")
    args = parser.parse_args(argv)
    try:
        print(overview_section(load_settings(args.results)))
    except (OSError, ValueError, KeyError, TypeError) as err:
        parser.error(f"cannot read the results: {err}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
