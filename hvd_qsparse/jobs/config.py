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
import re
import tomllib
from pathlib import Path
from typing import Dict, List, NamedTuple, Tuple

SUFFIXES = (".yaml", ".yml", ".toml")


class ConfigFile(NamedTuple):
    """A config file's values, and the line each key is on (for messages)."""

    path: str
    values: dict
    lines: Dict[str, int]

    def where(self, key) -> str:
        line = self.lines.get(str(key))
        return f"--config {self.path}" + (f" line {line}" if line else "")


def load(path: str) -> ConfigFile:
    """The mapping in a YAML or TOML file, or a ValueError naming ``--config``, the file and,
    where the parser says, the line."""
    suffix = Path(path).suffix
    if suffix not in SUFFIXES:
        raise ValueError(f"--config must be a {', '.join(SUFFIXES)} file, got {path!r}")
    try:
        text = Path(path).read_text()
    except UnicodeDecodeError as err:
        raise ValueError(f"--config {path}: not a text file ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise ValueError(f"--config {path}: {err.strerror}") from None
    data, lines = _parse_toml(path, text) if suffix == ".toml" else _parse_yaml(path, text)
    if not isinstance(data, dict):
        raise ValueError(f"--config {path}: expected a mapping of flag names to values")
    return ConfigFile(path, data, lines)


def _parse_toml(path: str, text: str) -> Tuple[dict, Dict[str, int]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"--config {path}: not valid TOML: {err}") from None
    lines = {}
    for key in data:
        pattern = re.compile(rf"^\s*[\"']?{re.escape(str(key))}[\"']?\s*=")
        lines[str(key)] = next((n for n, row in enumerate(text.splitlines(), 1) if pattern.match(row)), 0)
    return data, lines


def _parse_yaml(path: str, text: str) -> Tuple[dict, Dict[str, int]]:
    import yaml
    try:
        data = yaml.safe_load(text) or {}
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        raise ValueError(f"--config {path}: not valid YAML: {' '.join(str(err).split())}") from None
    lines = {}
    if isinstance(node, yaml.MappingNode):
        lines = {str(key.value): key.start_mark.line + 1 for key, _ in node.value}
    return data, lines


def to_argv(config: ConfigFile, parser: argparse.ArgumentParser) -> Tuple[List[str], Dict[str, str]]:
    """Flags equivalent to ``config`` for ``parser``, and where each came from (``flag ->
    "--config FILE line N"``). Unknown keys, a value that is not a plain scalar, and a switch
    given anything but true/false raise a ValueError naming the file and line."""
    actions = {a.dest: a for a in parser._actions if a.option_strings and a.dest not in ("help", "config")}
    argv, origins = [], {}
    for key, value in config.values.items():
        action = actions.get(str(key).replace("-", "_"))
        if action is None:
            accepted = ", ".join(sorted(d.replace("_", "-") for d in actions))
            raise ValueError(f"{config.where(key)}: unknown key {key!r}; accepted: {accepted}")
        flag = action.option_strings[-1]
        origins[flag] = config.where(key)
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            if not isinstance(value, bool):  # a string is never a boolean: "false" would be true
                raise ValueError(f"{config.where(key)}: {key} must be true or false, got {value!r}")
            if value == isinstance(action, argparse._StoreTrueAction):
                argv.append(flag)
        elif isinstance(value, (bool, list, dict)) or value is None:
            raise ValueError(f"{config.where(key)}: {key} takes one {_kind(action)}, got {value!r}")
        else:
            argv += [flag, str(value)]
    return argv, origins


def _kind(action: argparse.Action) -> str:
    if action.choices:
        return "of " + ", ".join(map(str, action.choices))
    return {int: "integer", float: "number"}.get(action.type, "value")


class JobArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors say where a value from ``--config`` came from."""

    #: ``flag -> "--config FILE line N"`` for the flags the config file set
    origins: Dict[str, str] = {}

    def error(self, message: str):
        for flag, where in self.origins.items():
            if re.search(rf"{re.escape(flag)}(?![\w-])", message):
                message = f"{message} (set by {where})"
                break
        super().error(message)
