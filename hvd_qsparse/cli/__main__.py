"""``python -m hvd_qsparse.cli COMMAND``: ``list`` (compressors and algorithms), ``plot`` (runs).

``list`` lives in ``cli.listing``; ``plot`` draws ``reporting.plot``'s figures of the jobs'
metrics files.
"""
import argparse
import sys

from hvd_qsparse.cli import listing
from hvd_qsparse.reporting.plot import plot


def run_plot(args) -> int:
    """``plot``: write the figures and print their paths."""
    for path in plot(args.runs, args.out, args.ymin, args.target):
        print(path)
    return 0


def add_plot_parser(subparsers) -> None:
    """The ``plot`` command's flags."""
    p = subparsers.add_parser("plot", help="PNG plots of accuracy against bits and wall time")
    p.add_argument("runs", nargs="+", metavar="RUN", help="metrics files (.jsonl or .csv) of the job")
    p.add_argument("--out", default="plots", help="folder for the PNG files")
    p.add_argument("--ymin", type=float, help="lowest test accuracy shown, in %% (default: every point)")
    p.add_argument("--target", type=float, help="draw this test accuracy (in %%) as a dashed line")
    p.set_defaults(func=run_plot)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hvd_qsparse.cli", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(required=True, metavar="COMMAND")
    listing.add_parser(subparsers)
    add_plot_parser(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
