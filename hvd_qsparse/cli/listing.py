"""``python -m hvd_qsparse.cli list``: every compressor and algorithm the job accepts."""
import argparse

from hvd_qsparse.compression import available, describe

DEFAULTS = {"ratio": 0.01, "levels": 256}
D = 1 << 20


def compressor_rows(ratio: float, levels: int) -> list:
    """``(name, parameters, bits per entry at d = 2^20)`` for every registered compressor."""
    rows = []
    for name in available():
        info = describe(name, ratio=ratio, levels=levels)
        params = ", ".join(f"{k}={v}" for k, v in info["params"].items()) or "-"
        rows.append((name, params, info["bits_per_entry"]))
    return rows


def algorithm_rows() -> list:
    """``(name, summary, its own flags)`` for every registered algorithm."""
    from hvd_qsparse.algorithms import algorithm_class, available_algorithms
    rows = []
    for name in available_algorithms():
        cls = algorithm_class(name)
        group = argparse.ArgumentParser(add_help=False)
        cls.add_arguments(group)
        flags = [a.option_strings[0] for a in group._actions]
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        rows.append((name, summary, " ".join(flags) or "-"))
    return rows


def run(args) -> int:
    print(f"compressors (bits per entry at d = 2^20, ratio={args.ratio}, levels={args.levels}; "
          f"fp32 is 32):")
    for name, params, bits in compressor_rows(args.ratio, args.levels):
        print(f"  {name:<12} {bits:>8.4f}  {params}")
    print("algorithms (--algorithm NAME; flags of their own):")
    for name, summary, flags in algorithm_rows():
        print(f"  {name:<14} {summary}\n  {'':<14} flags: {flags}")
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("list", help="compressors (parameters, bits per entry) and algorithms")
    p.add_argument("--ratio", type=float, default=DEFAULTS["ratio"])
    p.add_argument("--levels", type=int, default=DEFAULTS["levels"])
    p.set_defaults(func=run)
