"""The scaling measurement's tables (Markdown) and plot, from ``bench.scaling_model``'s result."""
from pathlib import Path
from typing import Dict, List

ORDER = ("allgather", "sharded", "dense", "powersgd")


def _by(rows: List[dict], *keys) -> Dict[tuple, dict]:
    return {tuple(r[k] for k in keys): r for r in rows if "error" not in r}


def measured_table(rows: List[dict]) -> str:
    lines = ["| link | R | exchange | sent B/step/rank | received B/step/rank | step ms | comm ms | model ms | score |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["rate"], r["ranks"], ORDER.index(r["variant"]))):
        if "error" in r:
            lines.append(f"| {r['rate']} | {r['ranks']} | {r['variant']} | failed: {r['error']} | | | | | |")
            continue
        score = f"{100 * r['score']:.2f}%" if r["metric"] == "test_accuracy" else f"{r['score']:.4f}"
        model = f"{1e3 * r['model_s']:.1f}" if "model_s" in r else ""
        lines.append(f"| {r['rate']} | {r['ranks']} | {r['variant']} | {r['sent_bytes_per_step']:,.0f} "
                     f"| {r['received_bytes_per_step']:,.0f} | {1e3 * r['step_s']:.1f} "
                     f"| {1e3 * r['communicate_s']:.1f} | {model} | {score} |")
    return "\n".join(lines)


def growth_table(rows: List[dict]) -> str:
    """Received bytes per rank at the largest R over the smallest, per exchange."""
    by = _by([r for r in rows if r.get("rate", "none") == "none"], "variant", "ranks")
    ranks = sorted({r for _, r in by})
    lo, hi = ranks[0], ranks[-1]
    lines = [f"| exchange | received at R={lo} | at R={hi} | ratio |", "|---|---|---|---|"]
    for v in ORDER:
        if (v, lo) in by and (v, hi) in by:
            a, b = by[(v, lo)]["received_bytes_per_step"], by[(v, hi)]["received_bytes_per_step"]
            lines.append(f"| {v} | {a:,.0f} | {b:,.0f} | {b / a:.2f}× |")
    return "\n".join(lines)


def check_table(check: List[dict]) -> str:
    lines = ["| exchange | R | comm ms measured | predicted | error | received measured | predicted | error |",
             "|---|---|---|---|---|---|---|---|"]
    for c in check:
        t_err = 100 * (c["predicted_s"] - c["measured_s"]) / c["measured_s"]
        b_err = 100 * (c["predicted_received"] - c["measured_received"]) / c["measured_received"]
        lines.append(f"| {c['variant']} | {c['ranks']} | {1e3 * c['measured_s']:.2f} | {1e3 * c['predicted_s']:.2f} "
                     f"| {t_err:+.0f}% | {c['measured_received']:,.0f} | {c['predicted_received']:,.0f} | {b_err:+.1f}% |")
    return "\n".join(lines)


def large_table(large: List[dict], model: str, rate: str) -> str:
    by = _by([r for r in large if r["model"] == model and r["rate"] == rate], "variant", "ranks")
    ranks = sorted({r for _, r in by})
    head = "| R | " + " | ".join(f"{v} MB recv / ms" for v in ORDER) + " |"
    lines = [head, "|---|" + "---|" * len(ORDER)]
    for rk in ranks:
        cells = [f"{by[(v, rk)]['received'] / 1e6:,.1f} / {1e3 * by[(v, rk)]['round_s']:,.1f}" for v in ORDER]
        lines.append(f"| {rk} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    by = _by([r for r in result["rows"] if r["rate"] == "none"], "variant", "ranks")
    for v in ORDER:
        points = sorted((rk, r["received_bytes_per_step"]) for (name, rk), r in by.items() if name == v)
        if points:
            left.plot(*zip(*points), "o-", label=f"{v} (measured)")
    left.set(xscale="log", yscale="log", xlabel="ranks R", ylabel="bytes received per rank per step",
             title="Measured on this machine")
    left.legend(fontsize=8)
    large = [r for r in result["large"] if r["model"] == "1B" and r["rate"] == "100 Gbit/s"]
    for v in ORDER:
        points = sorted((r["ranks"], r["round_s"]) for r in large if r["variant"] == v)
        right.plot(*zip(*points), "s--", label=v)
    right.set(xscale="log", yscale="log", xlabel="ranks R", ylabel="predicted seconds per round",
              title="Predicted: 1B parameters, 100 Gbit/s")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(result: dict, out: Path) -> None:
    """``tables.md`` and ``scaling.png`` into ``out``."""
    link = result["link"]
    parts = ["## Measured", measured_table(result["rows"]), "", "## Growth of what a rank receives",
             growth_table(result["rows"]), "",
             f"## Calibrated link (on the {result['calibrated_on']} runs)\n\nc = {1e3 * link['collective_s']:.2f} ms per "
             f"collective, α = {1e6 * link['latency_s']:.1f} µs per ring step, B = {link['bytes_per_s'] / 1e6:,.1f} MB/s, "
             f"γ = {1e9 * link['decode_s']:.2f} ns per entry: the transfers reach {100 * result['efficiency']:.0f}% of the "
             f"shaped rate. γ measured on this CPU: {1e9 * result['decode_s']:.2f} ns per entry. PowerSGD sent "
             f"{result['powersgd_fraction']:.4f} of d.",
             "", "## The model against the largest R (fitted without it)", check_table(result["check"]), ""]
    for model in ("25M", "1B"):
        for rate in ("10 Gbit/s", "100 Gbit/s"):
            parts += [f"## Predicted: {model} parameters, {rate}", large_table(result["large"], model, rate), ""]
    (out / "tables.md").write_text("\n".join(parts))
    plot(result, out / "scaling.png")
