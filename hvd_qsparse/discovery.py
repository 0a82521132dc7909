"""How the registries find their modules: import every module of a package.

Compressors, exchanges and algorithms register with a decorator next to their class; importing
every module of their package fills the tables, so a new one is one new file and no list
anywhere names it. Python caches modules, so calling this again costs nothing.
"""
import importlib
import pkgutil


def import_all(package_name: str) -> None:
    """Import every module of the package ``package_name`` (its ``__path__``, extended or not)."""
    package = importlib.import_module(package_name)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
