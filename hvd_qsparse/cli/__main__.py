"""``python -m hvd_qsparse.cli COMMAND``: ``list`` (compressors and algorithms), ``plot`` (runs)."""
import argparse
import sys

from hvd_qsparse.cli import listing, plot


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hvd_qsparse.cli", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(required=True, metavar="COMMAND")
    for module in (listing, plot):
        module.add_parser(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
