"""A YAML or TOML file as an alternative to the job's flags; flags given as well win.

Keys are the flag names without dashes (``local-steps`` or ``local_steps``). The file is turned
into flags placed before the command line's, so argparse checks every value exactly as it would
a flag (choices, types), and a later flag overrides the file's.

Example ``run.yaml``::

    algorithm: qsparse
    compressor: topk+qsgd
    ratio: 0.01
    local-steps: 8
    metrics: runs/topk-qsgd.jsonl
"""
import argparse
import tomllib
from pathlib import Path
from typing import List

SUFFIXES = (".yaml", ".yml", ".toml")


def load(path: str) -> dict:
    """The mapping in a YAML or TOML file, or a ValueError naming ``--config``."""
    suffix = Path(path).suffix
    if suffix not in SUFFIXES:
        raise ValueError(f"--config must be a {', '.join(SUFFIXES)} file, got {path!r}")
    text = Path(path).read_text()
    if suffix == ".toml":
        data = tomllib.loads(text)
    else:
        import yaml
        data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError(f"--config {path}: expected a mapping of flag names to values")
    return data


def to_argv(config: dict, parser: argparse.ArgumentParser) -> List[str]:
    """Flags equivalent to ``config`` for ``parser``; unknown keys raise a ValueError that lists
    the accepted ones."""
    actions = {a.dest: a for a in parser._actions if a.option_strings and a.dest not in ("help", "config")}
    argv = []
    for key, value in config.items():
        action = actions.get(str(key).replace("-", "_"))
        if action is None:
            accepted = ", ".join(sorted(d.replace("_", "-") for d in actions))
            raise ValueError(f"--config: unknown key {key!r}; accepted: {accepted}")
        flag = action.option_strings[-1]
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            if bool(value) == isinstance(action, argparse._StoreTrueAction):
                argv.append(flag)
        else:
            argv += [flag, str(value)]
    return argv
