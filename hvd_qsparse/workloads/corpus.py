"""A byte-level text corpus that needs no download: the Python standard library's own sources.

Training and validation text come from two fixed, disjoint lists of modules that exist in every
Python from 3.9 to 3.13. A module is read from ``<name>.py`` or, where it has become a package
(``zipfile`` in 3.12, ``pathlib`` in 3.13), from ``<name>/__init__.py``. The files' text differs
between Python versions, so the corpus is fixed for a given interpreter: every rank of one job
runs the same one and builds the same tokens.
"""
import sysconfig
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from .data import Split

#: modules whose source makes the training text, concatenated in this order
TRAIN_MODULES = ("argparse", "dataclasses", "functools", "inspect", "typing", "pathlib", "textwrap",
                 "difflib", "enum", "shutil", "tarfile", "zipfile", "configparser", "subprocess",
                 "logging")
#: modules whose source makes the validation text (none of them is in TRAIN_MODULES)
VAL_MODULES = ("ast", "calendar", "fractions", "gettext")
#: every byte value is a token
VOCAB = 256
#: put between files: NUL never occurs in Python source, so a window that spans two files says so
SEPARATOR = 0
#: default caps, in predicted tokens (windows × context): 6,400 and 1,024 windows at context 64,
#: i.e. 200 steps an epoch at 16 windows per rank on 2 ranks, and a validation pass of seconds
DEFAULT_TRAIN_TOKENS = 409_600
DEFAULT_VAL_TOKENS = 65_536


def stdlib_dir() -> Path:
    """The folder holding this interpreter's standard-library sources."""
    return Path(sysconfig.get_paths()["stdlib"])


def module_files(modules: Sequence[str], root: Optional[Path] = None) -> List[Path]:
    """The source file of each module, in order.

    Raises:
        FileNotFoundError: one or more sources are absent (some distributions ship the standard
            library as bytecode only); the message lists every missing module.
    """
    root = stdlib_dir() if root is None else Path(root)
    found, missing = [], []
    for name in modules:
        candidates = [root / f"{name}.py", root / name / "__init__.py"]
        hit = next((path for path in candidates if path.is_file()), None)
        if hit is None:
            missing.append(name)
        else:
            found.append(hit)
    if missing:
        raise FileNotFoundError(
            f"the text corpus needs the standard library's .py sources, but under {root} these are "
            f"missing: {', '.join(missing)} (looked for <name>.py and <name>/__init__.py). Use a "
            "Python build that ships its sources (python.org, pyenv, conda; on Debian/Ubuntu "
            "install the full python3.X package, not only python3.X-minimal).")
    return found


def corpus_tokens(modules: Sequence[str], root: Optional[Path] = None) -> torch.Tensor:
    """The modules' bytes joined by SEPARATOR, as a 1-D int64 tensor of values 0..255."""
    sep = bytes([SEPARATOR])
    text = sep.join(path.read_bytes() for path in module_files(modules, root))
    return torch.from_numpy(np.frombuffer(text, dtype=np.uint8).astype(np.int64))


def windows(tokens: torch.Tensor, context: int, max_tokens: Optional[int], seed: int) -> Split:
    """Non-overlapping windows of ``context + 1`` tokens as next-token pairs.

    When the text holds more than ``max_tokens`` predicted tokens, a seeded subset of the windows
    is kept (in text order) rather than the head of the text, so every file still contributes;
    cutting the head would keep only the first five training files.

    Args:
        tokens: 1-D int64 tokens.
        context: tokens a sample sees; each window has ``context + 1``.
        max_tokens: cap on windows × context, or None for every window.
        seed: fixes which windows are kept under the cap.

    Returns:
        A Split with ``x = window[:, :-1]`` and ``y = window[:, 1:]``, each (n, context) int64.
    """
    if context < 1:
        raise ValueError(f"context must be at least 1, got {context}")
    n = len(tokens) // (context + 1)
    if n == 0:
        raise ValueError(f"{len(tokens)} tokens do not fill one window of {context + 1}")
    blocks = tokens[: n * (context + 1)].view(n, context + 1)
    if max_tokens is not None and max_tokens // context < n:
        keep = max(1, max_tokens // context)
        chosen = np.sort(np.random.RandomState(seed).permutation(n)[:keep])
        blocks = blocks[torch.from_numpy(chosen)]
    blocks = blocks.contiguous()
    return Split(blocks[:, :-1].contiguous(), blocks[:, 1:].contiguous())


def load_corpus_split(context: int = 64, max_train_tokens: Optional[int] = DEFAULT_TRAIN_TOKENS,
                      max_val_tokens: Optional[int] = DEFAULT_VAL_TOKENS,
                      seed: int = 0) -> Tuple[Split, Split]:
    """The standard-library corpus as (train, validation) next-byte Splits.

    At the defaults (CPython 3.11): about 1.15 MB of training text cut to 6,400 windows
    (409,600 predicted tokens) and about 136 kB of validation text cut to 1,024 windows
    (65,536 tokens). No file is in both parts.

    Args:
        context: tokens per sample.
        max_train_tokens: cap on the training part's windows × context; None keeps all.
        max_val_tokens: the same for the validation part.
        seed: fixes which windows are kept under the caps (identical on every rank).

    Returns:
        ``(train, val)``, each with ``x`` and ``y`` int64 of shape (n, context).

    Raises:
        FileNotFoundError: the standard-library sources are not installed.
    """
    train = windows(corpus_tokens(TRAIN_MODULES), context, max_train_tokens, seed)
    val = windows(corpus_tokens(VAL_MODULES), context, max_val_tokens, seed + 1)
    return train, val
