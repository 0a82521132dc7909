"""The command line: ``python -m hvd_qsparse.cli list`` and ``python -m hvd_qsparse.cli plot``."""
