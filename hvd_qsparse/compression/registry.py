"""Compressors by name: a decorator next to each class fills the table the CLI offers.

Two kinds register: quantizers (dense operators: ``none``, ``fp16``, ``qsgd``, ``sign``) and
sparsifiers (index selectors: ``topk``, ``randk``). ``create("topk")`` is a sparsifier whose
kept values go as fp32; ``create("topk+sign")`` composes Q ∘ Comp_k. Adding a compressor is
one new module with one decorated class, imported by ``hvd_qsparse.compression``.
"""
import inspect
from typing import Dict, List

QUANTIZERS: Dict[str, type] = {}
SPARSIFIERS: Dict[str, type] = {}
SHARED_PARAMS = ("ratio", "levels")  # set from CLI flags; ignored by a part that takes neither


def register_quantizer(name: str):
    """Class decorator: make a quantizer available under ``name``."""
    return _register(QUANTIZERS, name)


def register_sparsifier(name: str):
    """Class decorator: make a sparsifier available under ``name`` (alone or as ``name+Q``)."""
    return _register(SPARSIFIERS, name)


def _register(table: Dict[str, type], name: str):
    def decorate(cls):
        if name in QUANTIZERS or name in SPARSIFIERS or "+" in name:
            raise ValueError(f"compressor name {name!r} is taken or contains '+'")
        cls.name = name
        table[name] = cls
        return cls
    return decorate


def available() -> List[str]:
    """Every accepted compressor name: quantizers, sparsifiers, and each sparsifier+quantizer
    pair whose quantizer is not summable-only (``none``/``fp16`` values are covered by the plain
    sparsifier)."""
    pairs = [f"{s}+{q}" for s in SPARSIFIERS for q, cls in QUANTIZERS.items() if not cls.summable]
    return list(QUANTIZERS) + list(SPARSIFIERS) + pairs


def create(name: str, **params):
    """Build the compressor called ``name`` with its hyperparameters (``ratio``, ``levels``).

    Raises:
        ValueError: an unknown name (the message lists the accepted ones), a parameter that no
            part of the compressor takes, or a parameter value out of range.
    """
    from hvd_qsparse.compression.sparse import SparseCompressor
    if name not in available():
        raise ValueError(f"unknown compressor {name!r}; accepted: {', '.join(available())}")
    sparsifier_name, _, quantizer_name = name.partition("+")
    if name in QUANTIZERS:
        sparsifier_name, quantizer_name = "", name
    parts = [(SPARSIFIERS.get(sparsifier_name)), QUANTIZERS.get(quantizer_name or "none")]
    used = {p for cls in parts if cls is not None for p in _accepted(cls)}
    unknown = sorted(set(params) - used - set(SHARED_PARAMS))
    if unknown:
        raise ValueError(f"compressor {name!r} takes parameters {sorted(used) or 'none'}, not {unknown}")
    sparsifier_cls, quantizer_cls = parts
    quantizer = quantizer_cls(**_select(quantizer_cls, params))
    if sparsifier_cls is None:
        return quantizer
    return SparseCompressor(sparsifier_cls(**_select(sparsifier_cls, params)), quantizer)


def describe(name: str, **params) -> dict:
    """Name, hyperparameters and analytic bits per entry (at d = 2**20) for the CLI's list."""
    comp = create(name, **params)
    d = 1 << 20
    return {"name": name, "params": comp.params(), "bits_per_entry": comp.analytic_bits(d) / d}


def _accepted(cls) -> List[str]:
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


def _select(cls, params: dict) -> dict:
    return {k: v for k, v in params.items() if k in _accepted(cls) and v is not None}
