"""``python -m hvd_qsparse.cli plot RUN... --out DIR``: accuracy against bits sent and against
wall time, every run on the same two figures (PNG, matplotlib).

A RUN is a metrics file of the training job (``--metrics run.jsonl`` or ``.csv``); the points are
its evaluation rows. Bits are the largest per-rank total at that step (log scale).
"""
from pathlib import Path

from hvd_qsparse.cli.metrics import read_metrics

FIGURES = {"accuracy_vs_bits.png": ("bits sent per rank (largest rank)", True),
           "accuracy_vs_time.png": ("wall time (s)", False)}


def run_points(path: str) -> tuple:
    """``(label, bits, seconds, accuracy)`` lists for one metrics file."""
    meta, rows = read_metrics(path)
    evals = [r for r in rows if r.get("test_accuracy") is not None]
    if not evals:
        raise ValueError(f"{path}: no evaluation rows (run the job with --metrics and --eval-every)")
    bits = [max(r["bits_per_rank"]) if r.get("bits_per_rank") else r["bits_total"] for r in evals]
    label = meta.get("label") or Path(path).stem
    return label, bits, [r["wall_s"] for r in evals], [100 * r["test_accuracy"] for r in evals]


def plot(paths, out_dir: str) -> list:
    """Write the figures for ``paths`` into ``out_dir``; returns the files written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    runs = [run_points(p) for p in paths]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, (xlabel, log_x) in FIGURES.items():
        fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
        for label, bits, seconds, acc in runs:
            ax.plot(bits if log_x else seconds, acc, marker="o", markersize=3, label=label)
        if log_x:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / filename)
        plt.close(fig)
        written.append(str(out / filename))
    return written


def run(args) -> int:
    for path in plot(args.runs, args.out):
        print(path)
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("plot", help="PNG plots of accuracy against bits and wall time")
    p.add_argument("runs", nargs="+", metavar="RUN", help="metrics files (.jsonl or .csv) of the job")
    p.add_argument("--out", default="plots", help="folder for the PNG files")
    p.set_defaults(func=run)
