"""Compressors by name: ``create("topk+sign", ratio=0.01)`` builds Q ∘ Comp_k from the tables.

``create("topk")`` is a sparsifier whose kept values go as fp32; ``create("topk+sign")``
composes a sparsifier with a quantizer of the kept values (``SparseCompressor``).
"""
import inspect
from typing import List, Optional

from hvd_qsparse.compression.registry import QUANTIZERS, SHARED_PARAMS, SPARSIFIERS, discover
from hvd_qsparse.compression.sparse import SparseCompressor


def available() -> List[str]:
    """Every accepted compressor name: quantizers, sparsifiers, and each sparsifier+quantizer
    pair whose quantizer is not summable-only (``none``/``fp16`` values are covered by the plain
    sparsifier)."""
    discover()
    pairs = [f"{s}+{q}" for s in SPARSIFIERS for q, cls in QUANTIZERS.items() if not cls.summable]
    return list(QUANTIZERS) + list(SPARSIFIERS) + pairs


def create(name: str, **params):
    """Build the compressor called ``name`` with its hyperparameters (``ratio``, ``levels``).

    Raises:
        ValueError: an unknown name (the message lists the accepted ones), a parameter that no
            part of the compressor takes, or a parameter value out of range.
    """
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


def with_ratio(compressor, ratio: Optional[float]):
    """``compressor`` at another ``ratio`` (the same name and other parameters), or None when
    ``ratio`` is None: the server pass's operator of the two-pass exchanges."""
    if ratio is None:
        return None
    return create(compressor.name, **{**compressor.params(), "ratio": ratio})


def describe(name: str, **params) -> dict:
    """Name, hyperparameters and analytic bits per entry (at d = 2**20) for the CLI's list."""
    comp = create(name, **params)
    d = 1 << 20
    return {"name": name, "params": comp.params(), "bits_per_entry": comp.analytic_bits(d) / d}


def _accepted(cls) -> List[str]:
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


def _select(cls, params: dict) -> dict:
    return {k: v for k, v in params.items() if k in _accepted(cls) and v is not None}
