"""Checkpoint files for a model and its wrapped optimizer: atomic, versioned, checksummed.

Each rank writes its own file (memories differ per rank). ``save_checkpoint`` writes to a
temporary file in the same folder, flushes it to disk and renames it over the target, so a
crash mid-write leaves the previous file or none, never a truncated one. The file holds a
format name and version, the rank and world size that wrote it, the algorithm, and a SHA-256
of every tensor's bytes. ``load_checkpoint`` reads it with ``torch.load(weights_only=True)``
(nothing pickled runs) and refuses, with a ``CheckpointError`` naming the file and what
differs, an empty, truncated or corrupted file, one of another rank or world size, another
algorithm or settings, another model, or one without the format (a plain ``torch.save``).

A file loads onto the device the model is on now, whatever device wrote it: one written on
``cuda:0`` loads on a CPU-only machine, or on ``cuda:1``.
"""
import hashlib
import os
from typing import Callable, Optional

import torch
from torch.serialization import default_restore_location

from hvd_qsparse.files import atomic_write

FORMAT = "hvd_qsparse-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file that cannot be resumed from, and why."""


def tensor_digest(tree) -> str:
    """SHA-256 over every tensor in ``tree`` (nested dicts, lists, tuples): its place, dtype,
    shape and bytes, in a fixed order."""
    digest = hashlib.sha256()
    for path, tensor in _tensors(tree, ""):
        raw = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
        digest.update(f"{path}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(raw.numpy().tobytes())
    return digest.hexdigest()


def _tensors(tree, path: str):
    if isinstance(tree, torch.Tensor):
        yield path, tree
    elif isinstance(tree, dict):
        for key in sorted(tree, key=str):
            yield from _tensors(tree[key], f"{path}/{key}")
    elif isinstance(tree, (list, tuple)):
        for i, item in enumerate(tree):
            yield from _tensors(item, f"{path}/{i}")


def save_checkpoint(path: str, model: torch.nn.Module, optimizer, extra: Optional[dict] = None) -> None:
    """Write this rank's checkpoint of ``model`` and the wrapped ``optimizer`` to ``path``, atomically.

    Args:
        extra: plain values (ints, strings, tensors ...) to keep beside them (an epoch, say).
    """
    payload = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "extra": extra or {}}
    record = {"format": FORMAT, "version": VERSION, "rank": optimizer.comm.rank, "world_size": optimizer.comm.size,
              "algorithm": optimizer.algorithm, "checksum": tensor_digest(payload), **payload}
    with atomic_write(path, binary=True) as out:
        torch.save(record, out)


def load_checkpoint(path: str, model: torch.nn.Module, optimizer, map_location=None) -> dict:
    """Restore ``model`` and ``optimizer`` from this rank's ``path``; returns the ``extra`` values.

    Args:
        map_location: as ``torch.load``'s. None: tensors written from a GPU are read onto the
            device of the model's first parameter, tensors written from the CPU stay there (as
            torch.optim keeps a non-capturable ``step``). Either way every tensor then ends on
            its parameter's device: the model's by ``load_state_dict``, the optimizer's and the
            algorithm's (memories, x̂, server memories) by the optimizer's ``load_state_dict``.

    Raises:
        CheckpointError: the file cannot be read, is corrupted, or was written by another rank,
            world size, algorithm, setting or model (the message says which and what to do).
    """
    record = _read(path, _onto_device_of(model) if map_location is None else map_location)
    _check_record(path, record, optimizer)
    try:
        model.load_state_dict(record["model"])
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {path}: its model does not fit this one: {_compact(err)}") from None
    try:
        optimizer.load_state_dict(record["optimizer"])
    except (ValueError, KeyError) as err:
        raise CheckpointError(f"checkpoint {path}: {err}") from None
    return record["extra"]


def _onto_device_of(model: torch.nn.Module) -> Optional[Callable]:
    """``torch.load``'s ``map_location`` that reads a GPU's tensors onto the model's device
    (None, torch's default, for a model without parameters)."""
    first = next(model.parameters(), None)
    if first is None:
        return None
    device = str(first.device)

    def restore(storage, location: str):
        return storage if location == "cpu" else default_restore_location(storage, device)
    return restore


def _read(path: str, map_location) -> dict:
    try:
        if os.path.getsize(path) == 0:
            raise CheckpointError(f"checkpoint {path} is empty (0 bytes)")
        record = torch.load(path, map_location=map_location, weights_only=True)
    except CheckpointError:
        raise
    except OSError as err:
        raise CheckpointError(f"checkpoint {path}: {err.strerror or err}") from None
    except Exception as err:  # truncated zip, not a torch file, a pickle that weights_only refuses
        raise CheckpointError(f"checkpoint {path} cannot be read (truncated, or not a checkpoint): "
                              f"{type(err).__name__}: {_first_line(err)}") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} has no {FORMAT!r} format record (a plain torch.save?): write "
                              "it with hvd_qsparse.save_checkpoint, or load its parts with torch.load yourself")
    return record


def _check_record(path: str, record: dict, optimizer) -> None:
    if record["version"] != VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {record['version']}; this hvd_qsparse "
                              f"reads version {VERSION}")
    comm = optimizer.comm
    if record["world_size"] != comm.size:
        raise CheckpointError(f"checkpoint {path} was written by a {record['world_size']}-rank job; this job has "
                              f"{comm.size} ranks (memories and shards are per rank): resume with the same size")
    if record["rank"] != comm.rank:
        raise CheckpointError(f"checkpoint {path} was written by rank {record['rank']}; this is rank {comm.rank}: "
                              "load each rank's own file")
    if record["algorithm"] != optimizer.algorithm:
        raise CheckpointError(f"checkpoint {path} was written by algorithm {record['algorithm']!r}; this "
                              f"optimizer runs {optimizer.algorithm!r}")
    payload = {key: record[key] for key in ("model", "optimizer", "extra")}
    if tensor_digest(payload) != record["checksum"]:
        raise CheckpointError(f"checkpoint {path} is corrupted: the checksum of its tensors does not match the one "
                              "written with them")


def _compact(err: Exception, limit: int = 400) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[:limit] + " ..."


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
