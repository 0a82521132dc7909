"""``python -m hvd_qsparse.bench.scaling_model``: the cost model (``comm.cost_model``) calibrated
on ``bench.scaling``'s runs, checked against them, and extrapolated to large R.

Calibration: c, α, 1/B and γ ≥ 0 by non-negative least squares of the measured seconds of
communication per step (one round per step at H = 1) on the model's terms (collectives,
latencies, bytes received, entries decoded) of the ``allgather``, ``sharded`` and ``dense`` runs
at the rate ``--calibrate-on`` names. In a shaped namespace every rank's traffic shares the one
loopback, so there the bytes term is R times a rank's (the link carries every rank's). Check:
the same fit on the runs below the largest R, then its prediction at the largest R against the
measured figure. Prediction: per-rank received bytes and round time at R = 64 … 1024 for a
25M- and a 1B-parameter model (fused buckets of 2^22 entries, the default) at 10 and 100
Gbit/s per rank, each rank on its own link. What carries over from the calibration is the share
of the nominal rate the transfers reach (fitted B over the shaped rate) and γ (measured on this
CPU); c and α fitted here absorb this machine's oversubscription (R ranks on 2 cores wait for
each other in every collective), so the prediction takes stated network figures instead
(``NETWORK``). PowerSGD is priced as what it measured: two ring allreduces per step of the
fraction of d it sent here, with the allreduce's latencies.
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
from scipy.optimize import nnls

from hvd_qsparse.bench.scaling_report import write_report
from hvd_qsparse.bench.netns import rate_bits_per_s
from hvd_qsparse.comm.link import decode_seconds
from hvd_qsparse.comm.cost_model import PRICED, Link, Round, received_bytes, round_shape, round_time, terms
from hvd_qsparse.compression import create

BUCKET = 1 << 22
LARGE_RANKS = (64, 128, 256, 512, 1024)
MODELS = {"25M": 25_000_000, "1B": 1_000_000_000}
#: per rate: (nominal bytes/s, α per ring step, c per collective) assumed for a cluster: TCP over
#: 10 Gbit/s Ethernet, RDMA over 100 Gbit/s, a 1 ms negotiation cycle per collective
NETWORK = {"10 Gbit/s": (10e9 / 8, 20e-6, 1e-3), "100 Gbit/s": (100e9 / 8, 5e-6, 1e-3)}


def buckets(numel: int) -> List[int]:
    """Fused buckets of at most ``BUCKET`` entries."""
    return [BUCKET] * (numel // BUCKET) + ([numel % BUCKET] if numel % BUCKET else [])


def shape_of(row: dict, compressor) -> Round:
    return round_shape(row["ranks"], buckets(row["parameters"]), compressor)


def link_share(row: dict) -> int:
    """How many ranks' traffic one link carries in ``row``'s run: all of them in a shaped namespace."""
    return 1 if row.get("rate", "none") == "none" else row["ranks"]


def row_terms(row: dict, compressor) -> List[float]:
    collectives, steps, nbytes, decoded = terms(row["variant"], shape_of(row, compressor))
    return [collectives, steps, nbytes * link_share(row), decoded]


def fit(rows: List[dict], compressor) -> Link:
    """c, α, B, γ from the priced runs' communication seconds per step."""
    priced = [r for r in rows if r["variant"] in PRICED and "error" not in r]
    a = np.array([row_terms(r, compressor) for r in priced], dtype=float)
    b = np.array([r["communicate_s"] for r in priced])
    scale = a.max(axis=0) + 1e-30  # columns of very different magnitude: solve on a scaled system
    x, _ = nnls(a / scale, b)
    collective, alpha, per_byte, gamma = x / scale
    return Link(latency_s=alpha, bytes_per_s=1.0 / max(per_byte, 1e-15), decode_s=gamma, collective_s=collective)


def predicted_s(row: dict, compressor, link: Link) -> float:
    """The fitted model's seconds for ``row``'s run (its link shared as it was)."""
    per_byte = 1.0 / link.bytes_per_s
    return float(np.dot(row_terms(row, compressor), [link.collective_s, link.latency_s, per_byte, link.decode_s]))


def check(rows: List[dict], compressor) -> List[dict]:
    """Fit below the largest R, predict it: per priced variant, measured and predicted figures."""
    largest = max(r["ranks"] for r in rows)
    if not any(r["ranks"] < largest for r in rows):
        return []
    link = fit([r for r in rows if r["ranks"] < largest], compressor)
    out = []
    for r in rows:
        if r["ranks"] != largest or r["variant"] not in PRICED or "error" in r:
            continue
        shape = shape_of(r, compressor)
        out.append({"variant": r["variant"], "ranks": largest, "measured_s": r["communicate_s"],
                    "predicted_s": predicted_s(r, compressor, link),
                    "measured_received": r["received_bytes_per_step"],
                    "predicted_received": received_bytes(r["variant"], shape)})
    return out


def powersgd_fraction(rows: List[dict]) -> float:
    """What PowerSGD sent per step over the dense allreduce's, at the largest R both ran."""
    both = {(r["variant"], r["ranks"]): r for r in rows if "error" not in r}
    ranks = max(rk for (v, rk) in both if v == "powersgd" and ("dense", rk) in both)
    return both[("powersgd", ranks)]["sent_bytes_per_step"] / both[("dense", ranks)]["sent_bytes_per_step"]


def predict_large(efficiency: float, decode_s: float, compressor, fraction: float) -> List[dict]:
    """Rows of the prediction: ``efficiency`` of each nominal rate, γ = ``decode_s``."""
    out = []
    for model, numel in MODELS.items():
        for rate, (nominal, latency, collective) in NETWORK.items():
            bytes_per_s = efficiency * nominal
            link = Link(latency, bytes_per_s, decode_s, collective)
            for ranks in LARGE_RANKS:
                shape = round_shape(ranks, buckets(numel), compressor)
                for kind in PRICED:
                    out.append({"model": model, "rate": rate, "ranks": ranks, "variant": kind,
                                "received": received_bytes(kind, shape), "round_s": round_time(kind, shape, link)})
                psgd = 2 * (ranks - 1) / ranks * 4 * numel * fraction
                out.append({"model": model, "rate": rate, "ranks": ranks, "variant": "powersgd", "received": psgd,
                            "round_s": 2 * link.collective_s + 4 * (ranks - 1) * link.latency_s + psgd / bytes_per_s})
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hvd_qsparse.bench.scaling_model", description=__doc__.splitlines()[0])
    p.add_argument("rows", nargs="+", help="scaling-<rate>.json files from bench.scaling")
    p.add_argument("--calibrate-on", default="1gbit", help="the rate whose runs calibrate the model")
    p.add_argument("--compressor", default="topk+sign")
    p.add_argument("--ratio", type=float, default=0.05, help="the calibration runs' ratio")
    p.add_argument("--out", default="docs/scaling")
    args = p.parse_args(argv)
    rows = [r for path in args.rows for r in json.loads(Path(path).read_text())]
    calibration = [r for r in rows if r["rate"] == args.calibrate_on]
    compressor = create(args.compressor, ratio=args.ratio)
    link = fit(calibration, compressor)
    for r in calibration:
        if "error" not in r and r["variant"] in PRICED:
            r["model_s"] = predicted_s(r, compressor, link)
    result = {"link": vars(link), "check": check(calibration, compressor), "calibrated_on": args.calibrate_on,
              "powersgd_fraction": powersgd_fraction(rows), "rows": rows}
    result["efficiency"] = link.bytes_per_s / (rate_bits_per_s(args.calibrate_on) / 8)
    result["decode_s"] = decode_seconds()
    result["large"] = predict_large(result["efficiency"], result["decode_s"], compressor, result["powersgd_fraction"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.json").write_text(json.dumps(result, indent=1))
    write_report(result, out)
    print(f"wrote {out}/model.json and the tables")
    return 0


if __name__ == "__main__":
    sys.exit(main())
