"""Accuracy against bits sent and against wall time, every run on the same two figures (PNG,
matplotlib); ``python -m hvd_qsparse.cli plot RUN... --out DIR`` draws them.

A RUN is a metrics file of the training job (``--metrics run.jsonl`` or ``.csv``); the points are
its evaluation rows. Bits are the largest per-rank total at that step. Both x axes are
logarithmic: compressed runs send and finish orders of magnitude apart from dense ones, and a
linear axis squeezes them into the first pixels.
"""
from pathlib import Path

from hvd_qsparse.reporting.metrics import read_metrics

FIGURES = {"accuracy_vs_bits.png": "bits sent per rank (largest rank)",
           "accuracy_vs_time.png": "wall time (s)"}
MARKERS = "os^vD<>p*h"


#: per score: how the y axis is labelled and the factor that turns a value into its plotted unit
SCORES = {"test_accuracy": ("test accuracy (%)", 100.0), "val_loss": ("validation loss (nats per token)", 1.0)}


def run_points(path: str, metric: str = "test_accuracy") -> tuple:
    """``(label, bits, seconds, scores)`` lists for one metrics file."""
    meta, rows = read_metrics(path)
    evals = [r for r in rows if r.get(metric) is not None]
    if not evals:
        raise ValueError(f"{path}: no evaluation rows (run the job with --metrics and --eval-every)")
    bits = [max(r["bits_per_rank"]) if r.get("bits_per_rank") else r["bits_total"] for r in evals]
    label = meta.get("label") or Path(path).stem
    return label, bits, [r["wall_s"] for r in evals], [SCORES[metric][1] * r[metric] for r in evals]


def plot(paths, out_dir: str, ymin=None, target=None, metric: str = "test_accuracy") -> list:
    """Write the figures for ``paths`` into ``out_dir``; returns the files written.

    Args:
        paths: metrics files, one curve each (up to 20 colours, and markers).
        out_dir: the folder for the PNG files.
        ymin: the lowest accuracy (%) shown, to zoom on the end of training; None: all points.
        target: a target accuracy (%) drawn as a dashed line; None: no line.
        metric: ``test_accuracy`` or ``val_loss`` (a language model's runs; ``ymin`` and
            ``target`` are then losses).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    runs = [run_points(p, metric) for p in paths]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    colors = plt.get_cmap("tab20" if len(runs) > 10 else "tab10").colors
    for filename, xlabel in FIGURES.items():
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
        for i, (label, bits, seconds, acc) in enumerate(runs):
            x = bits if filename == "accuracy_vs_bits.png" else seconds
            # A log axis has no place for 0 (evaluations before the first exchange): drop them.
            points = [(u, v) for u, v in zip(x, acc) if u > 0]
            ax.plot([u for u, _ in points], [v for _, v in points], marker=MARKERS[i % len(MARKERS)], markersize=3, linewidth=1.2,
                    color=colors[i % len(colors)], label=label)
        ax.set_xscale("log")
        if ymin is not None:
            ax.set_ylim(bottom=ymin)
        if target is not None:
            ax.axhline(target, color="0.4", linestyle="--", linewidth=0.8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(SCORES[metric][0])
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        fig.tight_layout()
        fig.savefig(out / filename)
        plt.close(fig)
        written.append(str(out / filename))
    return written

