"""Counting the calls that make the host wait for the device, on any machine.

On a GPU, reading a value back (``.item()``, ``bool(t)``, ``int(t)``), an output whose size
depends on the data (``nonzero``, boolean indexing, ``unique``) or a copy to host memory
blocks the CPU until every queued kernel has run; inside backward hooks that stalls backward
and cancels the overlap of compression with it. The same calls are made on CPU tensors, so a
``TorchFunctionMode`` that intercepts them counts what a GPU would wait for without a GPU, and
the count is a property of the code path, not of the machine.
"""
from collections import Counter

import torch
from torch.overrides import TorchFunctionMode

#: torch functions and tensor methods whose result the host must wait for
SYNCING = {
    torch.Tensor.item, torch.Tensor.__bool__, torch.Tensor.__int__, torch.Tensor.__float__,
    torch.Tensor.__index__, torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.cpu,
    torch.nonzero, torch.Tensor.nonzero, torch.unique, torch.Tensor.unique, torch.masked_select,
    torch.Tensor.masked_select, torch.argwhere,
}


def _bool_index(args) -> bool:
    """``t[mask]``: boolean indexing has a data-dependent size."""
    if len(args) < 2:
        return False
    index = args[1] if isinstance(args[1], tuple) else (args[1],)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in index)


class HostSyncCounter(TorchFunctionMode):
    """``with HostSyncCounter() as counter: ...`` then ``counter.total`` and ``counter.calls``
    (a reduction such as ``any()`` counts when its result is read back, by ``__bool__``)."""

    def __init__(self):
        super().__init__()
        self.calls: Counter = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in SYNCING:
            self.calls[getattr(func, "__name__", str(func))] += 1
        elif func is torch.Tensor.__getitem__ and _bool_index(args):
            self.calls["__getitem__[bool]"] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.calls.values())
