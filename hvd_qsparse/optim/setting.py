"""A run's setting in one line, e.g. ``topk+sign(ratio=0.01) H=8``, for tables and labels."""
from typing import Iterable, Optional

from hvd_qsparse.compression import create

#: options every algorithm's line leaves out: the compressor's own are shown with its name
COMPRESSOR_OPTIONS = ("compressor", "ratio", "levels")


def describe_setting(options: dict, hidden: Iterable[str] = ("seed",), quiet: Optional[dict] = None) -> str:
    """The compressor with only the parameters it uses, then the algorithm's own options
    (``local_steps`` as ``H``), leaving out ``hidden`` ones, a warm-up of zero, unset values and
    those at their ``quiet`` value."""
    quiet = quiet or {}
    parts = []
    if "compressor" in options:
        params = create(options["compressor"], ratio=options.get("ratio"), levels=options.get("levels")).params()
        shown = ",".join(f"{k}={v}" for k, v in params.items() if v is not False)
        parts.append(f"{options['compressor']}({shown})" if shown else options["compressor"])
    skip = set(COMPRESSOR_OPTIONS) | set(hidden)
    for key, value in options.items():
        if key in skip or value is None or (key == "warmup_steps" and value == 0) or quiet.get(key, object()) == value:
            continue
        parts.append(f"{'H' if key == 'local_steps' else key}={value}")
    return " ".join(parts)
