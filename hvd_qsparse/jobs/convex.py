"""The full-batch convex job: ``mpirun -np 2 python -m hvd_qsparse.jobs.convex [flags]``.

Distributed gradient descent on L2-regularised logistic regression (``workloads.logistic``), the
setting of the GD-SEC paper: every rank holds an equal block of the samples and computes its
full-batch gradient every step; the wrapped ``torch.optim.SGD`` (no momentum, step α = lr-scale/L)
steps with what the algorithm delivers. A run stops when the relative optimality gap
(f(θ) − f*)/|f*| reaches ``--target-gap`` (every rank computes it from the same θ, so all stop
together) or after ``--max-steps``. ``gd`` is dense distributed gradient descent: the ``qsparse``
algorithm with the ``none`` compressor and one step per round, i.e. one fp32 allreduce of the
gradient per step. ``--grid`` runs ``gd`` and then GD-SEC for every (β, ξ) of ``--beta-grid`` ×
``--xi-grid`` and prints the table of bits to reach the target gap and the fitted linear rates.
"""
import argparse
import json
import math
import sys
import time
from typing import List

import torch

from hvd_qsparse.algorithms import DistributedOptimizer, algorithm_class
from hvd_qsparse.validation import check_beta, check_xi
from hvd_qsparse.workloads.logistic import DATASETS, LogisticProblem, load_problem

GD_OPTIONS = {"algorithm": "qsparse", "compressor": "none", "local_steps": 1}
DEFAULT_XI = 1.75
RATE_WINDOW = 1e-2  # gaps below this are in the linear phase the rate is fitted on


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hvd_qsparse.jobs.convex", description=__doc__.splitlines()[0])
    p.add_argument("--algorithm", default="gdsec", choices=("gd", "gdsec"))
    p.add_argument("--dataset", default="digits", choices=DATASETS, help="digits: one-vs-rest, 10 classes")
    p.add_argument("--l2", type=float, default=1e-3, help="λ > 0, the L2 weight (strong convexity)")
    p.add_argument("--lr-scale", type=float, default=1.0, help="step α = lr-scale / L, in (0, 2)")
    p.add_argument("--target-gap", type=float, default=1e-6, help="stop at (f − f*)/|f*| <= this")
    p.add_argument("--max-steps", type=int, default=20000)
    p.add_argument("--seed", type=int, default=0, help="shuffles the samples before they are split")
    p.add_argument("--grid", action="store_true", help="gd, then gdsec at every (β, ξ) of the grids")
    p.add_argument("--xi-grid", default="0.5,1,1.75", help="comma-separated ξ values for --grid")
    p.add_argument("--beta-grid", default="1,0.9", help="comma-separated β values for --grid")
    p.add_argument("--json", metavar="PATH", help="write the rows as JSON (rank 0)")
    algorithm_class("gdsec").add_arguments(p.add_argument_group("--algorithm gdsec"))
    # ξ works against the step: the withheld error is up to ξ·|θ^k − θ^{k−1}| = ξα·|ĝ^{k−1}|, so
    # ξα must stay below about 1. The digits job's default ξ (for lr 0.05) diverges at α = 1/L.
    p.set_defaults(xi=DEFAULT_XI)
    return p


def _grid(parser, flag: str, text: str, check) -> List[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        parser.error(f"{flag} must be comma-separated numbers, got {text!r}")
    try:
        return [check(v, flag) for v in values]
    except ValueError as err:
        parser.error(str(err))


def parse_args(argv=None) -> argparse.Namespace:
    """Flags, validated before any rank computes (bad values exit naming the flag)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    checks = (("--l2", args.l2, args.l2 > 0, "> 0"), ("--lr-scale", args.lr_scale, 0 < args.lr_scale < 2, "in (0, 2)"),
              ("--target-gap", args.target_gap, args.target_gap > 0, "> 0"),
              ("--max-steps", args.max_steps, args.max_steps >= 1, ">= 1"))
    for flag, value, ok, accepted in checks:
        if not ok:
            parser.error(f"{flag} must be {accepted}, got {value}")
    try:
        args.options = algorithm_class("gdsec").options_from_args(args)
    except ValueError as err:
        parser.error(str(err))
    args.xis = _grid(parser, "--xi-grid", args.xi_grid, check_xi)
    args.betas = _grid(parser, "--beta-grid", args.beta_grid, check_beta)
    return args


def solve(problem: LogisticProblem, shard: LogisticProblem, f_star: float, lr: float, options: dict,
          args, hvd) -> dict:
    """One run from W = 0 until the target gap; every rank returns the same row."""
    weight = torch.nn.Parameter(torch.zeros(problem.shape, dtype=torch.float32))
    options = dict(options)
    opt = DistributedOptimizer(torch.optim.SGD([weight], lr=lr), [("weight", weight)],
                               algorithm=options.pop("algorithm", "gdsec"), **options)
    opt.broadcast_state(root_rank=0)
    gaps, start = [], time.perf_counter()
    for step in range(args.max_steps + 1):
        gaps.append((problem.objective(weight) - f_star) / abs(f_star))
        if gaps[-1] <= args.target_gap or step == args.max_steps or not gaps[-1] < 1e6:
            break
        opt.zero_grad()
        shard.loss(weight).backward()
        opt.step()
    wall = time.perf_counter() - start
    everyone = hvd.allgather_object((opt.bits.total_sent, weight.detach().clone()), name="convex.summary")
    if any(not torch.equal(w, everyone[0][1]) for _, w in everyone):
        raise RuntimeError("ranks disagree on the parameters")
    return {"steps": len(gaps) - 1, "bits_per_rank": [b for b, _ in everyone], "final_gap": gaps[-1],
            "reached": gaps[-1] <= args.target_gap, "rate": fitted_rate(gaps), "wall_s": wall,
            "dense_bits_per_step": 32 * weight.numel(), "gaps": gaps}


def fitted_rate(gaps: List[float]) -> float:
    """ρ of gap_k ≈ C·ρ^k, least squares on log(gap) over the steps with gap below 1e-2 (all
    steps when fewer than 10 are); nan when no gap is positive and finite."""
    points = [(k, math.log(g)) for k, g in enumerate(gaps) if 0 < g < RATE_WINDOW]
    if len(points) < 10:
        points = [(k, math.log(g)) for k, g in enumerate(gaps) if 0 < g < math.inf]
    if len(points) < 2:
        return math.nan
    mean_k = sum(k for k, _ in points) / len(points)
    mean_l = sum(v for _, v in points) / len(points)
    slope = sum((k - mean_k) * (v - mean_l) for k, v in points) / sum((k - mean_k) ** 2 for k, _ in points)
    return math.exp(slope)


def runs(args) -> List[dict]:
    """The configurations to run: ``--grid``'s, or the one the flags name."""
    if args.grid:
        return [{"name": "gd", **GD_OPTIONS}] + [
            {"name": "gdsec", "algorithm": "gdsec", "beta": b, "xi": x, "always_sparse": args.always_sparse}
            for b in args.betas for x in args.xis]
    if args.algorithm == "gd":
        return [{"name": "gd", **GD_OPTIONS}]
    return [{"name": "gdsec", "algorithm": "gdsec", **args.options}]


TABLE_HEAD = (f"{'algorithm':<9} {'beta':>5} {'xi':>6} {'steps':>6} {'bits/rank to gap':>17} {'vs GD':>7} "
              f"{'rate':>8} {'final gap':>9} {'wall':>7}")


def format_row(row: dict, gd) -> str:
    """One run's line; "vs GD" divides the bits GD (the row ``gd``, or None) needed by the run's."""
    bits = max(row["bits_per_rank"])
    ratio = f"{max(gd['bits_per_rank']) / bits:6.2f}x" if gd and gd["reached"] and row["reached"] else "      -"
    beta, xi = (f"{row['beta']:5.2f}", f"{row['xi']:6.3g}") if row["name"] == "gdsec" else ("    -", "     -")
    steps = f"{row['steps']:>6}" if row["reached"] else f"{'>' + str(row['steps']):>6}"
    return (f"{row['name']:<9} {beta} {xi} {steps} {bits:>17.4e} {ratio} {row['rate']:8.5f} "
            f"{row['final_gap']:9.2e} {row['wall_s']:6.1f}s")


def _say(hvd, text: str) -> None:
    if hvd.rank() == 0:
        print(text, flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    import horovod.torch as hvd
    hvd.init()
    torch.set_num_threads(1)
    problem = load_problem(args.dataset, args.l2, ranks=hvd.size(), seed=args.seed)
    shard = problem.shard(hvd.rank(), hvd.size())
    f_star, _ = problem.optimum()
    smooth = problem.smoothness()
    lr = args.lr_scale / smooth
    classes, width = problem.shape
    _say(hvd, f"dataset={args.dataset} n={len(problem.x)} d={classes * width} ranks={hvd.size()} l2={args.l2:g} "
              f"L={smooth:.4f} lr={lr:.4f} f*={f_star:.12f} target gap={args.target_gap:g}\n{TABLE_HEAD}")
    rows = []
    for config in runs(args):  # a row is printed as soon as its run ends: a grid takes minutes
        options = {k: v for k, v in config.items() if k != "name"}
        rows.append({**config, **solve(problem, shard, f_star, lr, options, args, hvd)})
        _say(hvd, format_row(rows[-1], rows[0] if rows[0]["name"] == "gd" else None))
    _say(hvd, "(bits/rank to gap: the most any rank sent until the gap was reached; '>' marks a run that never "
              "reached it)")
    if hvd.rank() == 0 and args.json:
        with open(args.json, "w") as fh:
            json.dump({"f_star": f_star, "L": smooth, "lr": lr, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
