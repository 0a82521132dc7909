"""The compressor tables: a decorator next to each class fills them.

Two kinds register: quantizers (dense operators: ``none``, ``fp16``, ``qsgd``, ``sign``) and
sparsifiers (index selectors: ``topk``, ``randk``). Adding a compressor is one new module with
one decorated class: ``discover()`` imports every module of the ``hvd_qsparse.compression``
package (a module dropped there is found without editing any other file), and a module
elsewhere registers when it is imported. ``compression.factory`` builds compressors by name.
"""
from typing import Dict

from hvd_qsparse.discovery import import_all

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


def discover() -> None:
    """Import every module of the ``hvd_qsparse.compression`` package, so that each decorated
    class in it is in the tables (importing twice is free: Python caches modules)."""
    import_all("hvd_qsparse.compression")
