"""Exchanges by name: a decorator next to each class fills the table the algorithms choose from.

An algorithm names the exchange it wants (``--exchange``, ``--server-layout``, GD-SEC's
switch) and ``make_exchange`` builds it over the algorithm's communicator; ``auto`` resolves
to ``allreduce`` for a summable compressor and ``allgather`` otherwise. A new exchange is one
new module in ``hvd_qsparse.comm`` with one decorated class (``discover`` finds it).
"""
from typing import Dict, List

from hvd_qsparse.discovery import import_all, registering

EXCHANGES: Dict[str, type] = {}


def register_exchange(name: str):
    """Class decorator: make an exchange available under ``name``."""
    taken = name in EXCHANGES or name == "auto"
    return registering(EXCHANGES, "exchange_name", name, f"exchange name {name!r} is taken" if taken else None)


def discover() -> None:
    """Import every module of ``hvd_qsparse.comm``, so each decorated exchange is in the table."""
    import_all("hvd_qsparse.comm")


def available_exchanges() -> List[str]:
    """Every registered exchange name."""
    discover()
    return list(EXCHANGES)


def resolve(name: str, compressor) -> str:
    """``name``, with ``auto`` replaced by ``allreduce`` (summable compressor) or ``allgather``."""
    if name == "auto":
        return "allreduce" if compressor.summable else "allgather"
    return name


def make_exchange(name: str, compressor, comm=None, **options):
    """The exchange called ``name`` (or ``auto``) for ``compressor`` over ``comm``.

    Raises:
        ValueError: an unknown name (the message lists the accepted ones), or a combination the
            exchange refuses (an allreduce of payloads that cannot be summed).
    """
    name = resolve(name, compressor)
    if name not in available_exchanges():
        raise ValueError(f"unknown exchange {name!r}; accepted: auto, {', '.join(EXCHANGES)}")
    return EXCHANGES[name](compressor, comm=comm, **options)
