"""Flag checks the jobs share with the benchmark (``hvd_qsparse.bench.compare``): every value
is checked before any rank trains, and a bad one is a usage error (exit code 2) naming the flag."""
import argparse
import math
import os
from typing import Iterable, Set

from hvd_qsparse.algorithms import algorithm_class
from hvd_qsparse.compression import check_levels, check_ratio

#: QSGD codes take 1 + ⌈log2(s + 1)⌉ bits; beyond 2**30 levels the packing leaves its width
MAX_LEVELS = 1 << 30
#: the flags an algorithm may not use; given to one that does not, they are refused, not ignored
ALGORITHM_FLAGS = ("compressor", "ratio", "levels", "local_steps", "warmup_steps")


def check_compressor_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--ratio`` and ``--levels`` in range, or a usage error naming the flag.

    Args:
        parser: the parser whose ``error`` reports a bad value (exit code 2).
        args: parsed flags with ``ratio`` and ``levels``.
    """
    for flag, check, value in (("--ratio", check_ratio, args.ratio), ("--levels", check_levels, args.levels)):
        try:
            check(value)
        except ValueError as err:
            parser.error(f"{flag}: {err}")
    if args.levels > MAX_LEVELS:
        parser.error(f"--levels must be at most 2**30 = {MAX_LEVELS} (QSGD packs 1 + ceil(log2(s + 1)) bits "
                     f"per entry), got {args.levels}")


def check_number(parser: argparse.ArgumentParser, flag: str, value: float, low: float, high: float = math.inf,
                 low_open: bool = False) -> None:
    """A finite number in [low, high] ((low, high] with ``low_open``), or a usage error."""
    ok = math.isfinite(value) and (value > low if low_open else value >= low) and value <= high
    if not ok:
        bounds = f"{'(' if low_open else '['}{low}, {high}]" if math.isfinite(high) else \
            f"{'>' if low_open else '>='} {low}"
        parser.error(f"{flag} must be a finite number {'in ' if math.isfinite(high) else ''}{bounds}, got {value}")


def given_flags(parser: argparse.ArgumentParser, argv: Iterable[str]) -> Set[str]:
    """The ``dest`` of every flag that ``argv`` gives explicitly (``--x v`` or ``--x=v``)."""
    by_option = {opt: a.dest for a in parser._actions for opt in a.option_strings}
    return {by_option[token.split("=", 1)[0]] for token in argv if token.split("=", 1)[0] in by_option}


class _Reads(argparse.Namespace):
    """A namespace that records which flags are read from it."""

    def __init__(self, args: argparse.Namespace):
        super().__init__(**vars(args))
        object.__setattr__(self, "read", set())

    def __getattribute__(self, name):
        if not name.startswith("_") and name != "read":
            object.__getattribute__(self, "read").add(name)
        return object.__getattribute__(self, name)


def check_algorithm_flags(parser: argparse.ArgumentParser, args: argparse.Namespace, given: Set[str]) -> dict:
    """The algorithm's constructor options from the flags; a flag given explicitly that this
    algorithm does not read (``--local-steps`` for DoubleSqueeze, ``--compressor`` for GD-SEC,
    another algorithm's own flag) is a usage error rather than silently ignored."""
    cls = algorithm_class(args.algorithm)
    reads = _Reads(args)
    try:
        options = cls.options_from_args(reads)
    except ValueError as err:
        parser.error(f"--algorithm {args.algorithm}: {err}")
    own = {a.dest for g in parser._action_groups if g.title and g.title.startswith("--algorithm ")
           for a in g._group_actions}
    unused = sorted((given & (own | set(ALGORITHM_FLAGS))) - reads.read)
    if unused:
        flags = ", ".join("--" + dest.replace("_", "-") for dest in unused)
        them = "them" if len(unused) > 1 else "it"
        parser.error(f"{flags}: not used by --algorithm {args.algorithm}; leave {them} out")
    return options


def check_output_paths(parser: argparse.ArgumentParser, args: argparse.Namespace, flags: Iterable[str]) -> None:
    """Each output file's folder exists and is writable now, not after the whole run."""
    for flag in flags:
        path = getattr(args, flag.lstrip("-").replace("-", "_"), None)
        if not path:
            continue
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
            parser.error(f"{flag} {path}: the folder {folder} does not exist or is not writable")
        if os.path.isdir(path):
            parser.error(f"{flag} {path}: is a folder; give a file path")
