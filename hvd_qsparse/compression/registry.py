"""The compressor tables: a decorator next to each class fills them.

Two kinds register: quantizers (dense operators: ``none``, ``fp16``, ``qsgd``, ``sign``) and
sparsifiers (index selectors: ``topk``, ``randk``). Adding a compressor is one new module with
one decorated class: ``discover()`` imports every module of the ``hvd_qsparse.compression``
package (a module dropped there is found without editing any other file), and a module
elsewhere registers when it is imported. ``compression.factory`` builds compressors by name.
"""
from typing import Dict

from hvd_qsparse.discovery import import_all, registering

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
    taken = name in QUANTIZERS or name in SPARSIFIERS or "+" in name
    return registering(table, "name", name, f"compressor name {name!r} is taken or contains '+'" if taken else None)


def discover() -> None:
    """Import every module of the ``hvd_qsparse.compression`` package, so that each decorated
    class in it is in the tables (once per search path: ``discovery.import_all`` remembers)."""
    import_all("hvd_qsparse.compression")
