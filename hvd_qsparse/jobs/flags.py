"""Flag checks the jobs share with the benchmark (``hvd_qsparse.bench.compare``)."""
import argparse

from hvd_qsparse.compression import check_levels, check_ratio


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
