"""How the registries fill and find their tables: one class decorator, and an import of every
module of a package.

Compressors, exchanges and algorithms register with a decorator next to their class; importing
every module of their package fills the tables, so a new one is one new file and no list
anywhere names it.
"""
import importlib
import pkgutil
from typing import Dict, Optional, Set, Tuple

#: (package, its search path) already imported: listing a package's folder again costs a scan
_IMPORTED: Set[Tuple[str, Tuple[str, ...]]] = set()


def import_all(package_name: str) -> None:
    """Import every module of the package ``package_name`` (its ``__path__``, extended or not)."""
    package = importlib.import_module(package_name)
    key = (package_name, tuple(package.__path__))
    if key in _IMPORTED:
        return
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    _IMPORTED.add(key)


def registering(table: Dict[str, type], attribute: str, name: str, refused: Optional[str] = None):
    """Class decorator: ``table[name] = cls`` and ``cls.<attribute> = name``.

    Args:
        refused: the message of the ValueError to raise instead (a name taken or malformed),
            or None.
    """
    def decorate(cls):
        if refused is not None:
            raise ValueError(refused)
        setattr(cls, attribute, name)
        table[name] = cls
        return cls
    return decorate
