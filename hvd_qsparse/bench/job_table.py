"""The README's job tables: every algorithm on each model, beside the dense run, in one run.

``python -m hvd_qsparse.bench.job_table [--table main|per-step] [--models mlp,resnet,transformer]
[--ranks 2] [--optimizer auto|sgd|adamw] [--epochs N] [--out runs/job_table]`` (or
``bash launch/job_table.sh``) runs the training job once per row under ``mpirun`` and prints a
Markdown table: the score (test accuracy, or the transformer's validation loss), its difference
to dense, the bits each rank sent and how many times fewer than dense fp32 allreduce, and the
wall time; each row's exact flags go beside it. The rows of a model share its ``MODEL_FLAGS``
(epochs, cosine schedule) and the optimizer flags, so only the algorithm differs. ``main`` is
every algorithm's usual setting; ``per-step`` the algorithms that talk at every step, with the
settings of ``docs/per-step-compression.md``.
"""
import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

from hvd_qsparse.bench.runner import ROOT, free_port, run_env

#: flags every row of a model shares
MODEL_FLAGS: Dict[str, Tuple[str, ...]] = {
    "mlp": ("--model", "mlp", "--epochs", "30", "--schedule", "cosine"),
    "resnet": ("--model", "resnet", "--epochs", "8", "--schedule", "cosine"),
    "transformer": ("--model", "transformer", "--epochs", "2", "--schedule", "cosine"),
}
#: (row name, the algorithm's flags); the first row is the dense baseline
ROWS: List[Tuple[str, Tuple[str, ...]]] = [
    ("dense", ("--compressor", "none", "--local-steps", "1")),
    ("qsparse topk+sign H=1", ("--compressor", "topk+sign", "--ratio", "0.01", "--local-steps", "1")),
    ("qsparse topk+sign H=1 sharded", ("--compressor", "topk+sign", "--ratio", "0.01", "--local-steps", "1",
                                       "--exchange", "sharded")),
    ("qsparse topk+sign H=4", ("--compressor", "topk+sign", "--ratio", "0.01", "--local-steps", "4")),
    ("qsparse topk+sign H=8", ("--compressor", "topk+sign", "--ratio", "0.01", "--local-steps", "8")),
    ("qsparse topk+qsgd H=4", ("--compressor", "topk+qsgd", "--ratio", "0.01", "--levels", "16",
                               "--local-steps", "4")),
    ("qsparse-async topk+sign H=4", ("--algorithm", "qsparse-async", "--compressor", "topk+sign", "--ratio",
                                     "0.01", "--local-steps", "4")),
    ("doublesqueeze topk+sign", ("--algorithm", "doublesqueeze", "--compressor", "topk+sign", "--ratio", "0.01")),
    ("gdsec", ("--algorithm", "gdsec",)),
    ("risgd H=4", ("--algorithm", "risgd", "--local-steps", "4")),
]
#: the per-step algorithms: what compresses every step, before and after docs/per-step-compression.md
PER_STEP_ROWS: List[Tuple[str, Tuple[str, ...]]] = [
    ("dense", ("--compressor", "none", "--local-steps", "1")),
    ("qsparse topk H=1", ("--compressor", "topk", "--ratio", "0.01", "--local-steps", "1")),
    ("qsparse topk+sign H=1", ("--compressor", "topk+sign", "--ratio", "0.01", "--local-steps", "1")),
    ("qsparse topk+bsign H=1", ("--compressor", "topk+bsign", "--ratio", "0.01", "--local-steps", "1")),
    ("doublesqueeze topk+sign", ("--algorithm", "doublesqueeze", "--compressor", "topk+sign", "--ratio", "0.01")),
    ("doublesqueeze topk 0.02", ("--algorithm", "doublesqueeze", "--compressor", "topk", "--ratio", "0.02")),
    ("doublesqueeze topk+bsign 0.04", ("--algorithm", "doublesqueeze", "--compressor", "topk+bsign",
                                       "--ratio", "0.04")),
    ("gdsec xi=10", ("--algorithm", "gdsec", "--xi", "10")),
    ("gdsec xi=0 max-density=0.01", ("--algorithm", "gdsec", "--xi", "0", "--max-density", "0.01")),
    *((f"gdsec xi=0 max-density={rho} no-EC", ("--algorithm", "gdsec", "--xi", "0", "--max-density", rho,
                                               "--no-error-correction")) for rho in ("0.01", "0.02")),
]
TABLES = {"main": ROWS, "per-step": PER_STEP_ROWS}


def stem_of(out: Path, model: str, name: str) -> Path:
    """Where a row's files go: ``<out>/<model>-<row name>``."""
    return out / f"{model}-{name.replace(' ', '_').replace('=', '')}"


def model_flags(model: str, optimizer: str, epochs) -> List[str]:
    """The flags every row of ``model`` shares, with the optimizer and epoch count asked for."""
    flags = list(MODEL_FLAGS[model])
    if epochs is not None:
        flags[flags.index("--epochs") + 1] = str(epochs)
    return flags + ([] if optimizer == "auto" else ["--optimizer", optimizer])


def run_row(model: str, name: str, flags, ranks: int, out: Path, shared: List[str]) -> dict:
    """One training job; its summary (``error`` set when it failed)."""
    stem = stem_of(out, model, name)
    argv = [*shared, *flags]
    cmd = [shutil.which("mpirun") or "mpirun", "-np", str(ranks), "--oversubscribe", "--bind-to", "none",
           sys.executable, "-m", "hvd_qsparse.jobs.train", "--no-progress", *argv, "--json", f"{stem}.json"]
    start = time.perf_counter()
    with open(f"{stem}.log", "w") as log:
        code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=run_env(free_port()), cwd=str(ROOT))
    summary = json.loads(Path(f"{stem}.json").read_text()) if code == 0 else {"error": f"exit code {code}"}
    summary.update(row=name, flags=" ".join(argv), seconds=time.perf_counter() - start)
    Path(f"{stem}.row.json").write_text(json.dumps(summary))
    return summary


def finished_rows(out: Path, models: List[str], table=ROWS) -> List[dict]:
    """Every row of ``table`` run so far into ``out`` for ``models``, in table order (a later run
    of a row replaces an earlier one, so a table can be completed row by row with ``--rows``)."""
    rows = []
    for model in models:
        for name, _ in table:
            path = Path(f"{stem_of(out, model, name)}.row.json")
            if path.exists():
                rows.append(json.loads(path.read_text()))
    return rows


def score_text(summary: dict, dense: dict) -> Tuple[str, str]:
    """(score, difference to dense) as the table shows them."""
    if "error" in summary:
        return summary["error"], ""
    if summary["metric"] == "test_accuracy":
        acc, base = 100 * summary["test_accuracy"], 100 * dense.get("test_accuracy", float("nan"))
        return f"{acc:.2f}%", f"{acc - base:+.2f} pt"
    loss, base = summary[summary["metric"]], dense.get(summary["metric"], float("nan"))
    return f"{loss:.4f}", f"{100 * (loss - base) / base:+.2f}%"


def markdown(rows: List[dict]) -> str:
    """The table, one row per run, the first run of each model its dense baseline."""
    lines = ["| model | algorithm | score | vs dense | bits/rank | fewer bits than dense fp32 | received/rank "
             "| fewer than ring fp32 | wall (s) | flags |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    dense = {}
    for r in rows:
        model = r["flags"].split()[1]
        dense.setdefault(model, r)
        score, delta = score_text(r, dense[model])
        bits = max(r.get("bits_per_rank", [0]))
        ratio = f"{r['dense_fp32_bits_per_rank'] / bits:.0f}×" if bits else ""
        received = max(r.get("received_bits_per_rank") or [0])
        versus_ring = r.get("received_reduction")
        ring = f"{versus_ring:.0f}×" if versus_ring else ""
        lines.append(f"| {model} | {r['row']} | {score} | {delta} | {bits:.3g} | {ratio} | "
                     f"{received:.3g} | {ring} | {r.get('wall_time_s', 0):.1f} | `{r['flags']}` |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hvd_qsparse.bench.job_table", description=__doc__.splitlines()[0])
    p.add_argument("--table", choices=sorted(TABLES), default="main")
    p.add_argument("--models", default="mlp,resnet,transformer")
    p.add_argument("--optimizer", choices=("auto", "sgd", "adamw"), default="auto")
    p.add_argument("--epochs", type=int, default=None, help="instead of each model's epoch count")
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--rows", default="all",
                   help="comma-separated row names to run (the table shows every row run into --out so far)")
    p.add_argument("--out", default="runs/job_table")
    args = p.parse_args(argv)
    models = args.models.split(",")
    unknown = sorted(set(models) - set(MODEL_FLAGS))
    if unknown:
        p.error(f"--models: unknown {', '.join(unknown)}; accepted: {', '.join(MODEL_FLAGS)}")
    table = TABLES[args.table]
    chosen = [(n, f) for n, f in table if args.rows == "all" or n in args.rows.split(",")]
    if not chosen:
        p.error(f"--rows: none of {args.rows!r}; accepted: all, or {', '.join(n for n, _ in table)}")
    if args.epochs is not None and args.epochs < 1:
        p.error(f"--epochs must be an integer >= 1, got {args.epochs}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for model in models:
        for name, flags in chosen:
            row = run_row(model, name, flags, args.ranks, out, model_flags(model, args.optimizer, args.epochs))
            failed += "error" in row
            print(f"{model} {name}: {score_text(row, row)[0]} ({row['seconds']:.0f} s)", file=sys.stderr, flush=True)
    text = markdown(finished_rows(out, models, table))
    (out / "table.md").write_text(text + "\n")
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
