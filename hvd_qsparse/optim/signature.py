"""The same model on every rank, checked once before the first exchange.

A model that differs across ranks (another parameter count, order, name, shape or dtype) would
otherwise send mismatched collectives, which Horovod either rejects on some ranks only or waits
on forever. One ``allgather_object`` of each rank's ``(name, shape, dtype)`` list lets every rank
find the same first difference and raise the same error.
"""
from typing import List, Sequence, Tuple

import torch


class ModelMismatchError(ValueError):
    """The ranks' models differ."""


def model_signature(named_params: Sequence[Tuple[str, torch.Tensor]]) -> List[Tuple[str, tuple, str]]:
    return [(name, tuple(p.shape), str(p.dtype).replace("torch.", "")) for name, p in named_params]


def first_difference(reference: list, other: list) -> str:
    """A sentence naming the first entry where ``other`` differs from ``reference``."""
    for i, (a, b) in enumerate(zip(reference, other)):
        if a != b:
            return f"parameter #{i} is {a[0]!r} {a[1]} {a[2]} on rank 0 but {b[0]!r} {b[1]} {b[2]}"
    return f"rank 0 trains {len(reference)} parameter tensors, this one {len(other)}"


def check_same_model(comm, named_params) -> None:
    """Raise ``ModelMismatchError`` on every rank unless all ranks hold the same parameters."""
    signatures = comm.allgather_object(model_signature(named_params), name="hvd_qsparse.model")
    for rank, signature in enumerate(signatures):
        if signature != signatures[0]:
            raise ModelMismatchError(
                f"the model differs across ranks: on rank {rank}, {first_difference(signatures[0], signature)}. "
                "Every rank must build the same model and hand the optimizer the same parameters "
                "in the same order")
