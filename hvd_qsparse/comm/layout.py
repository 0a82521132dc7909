"""The layout table of a flat parameter buffer: where each named tensor lives in one fp32 vector.

A one-sided window holds the whole model as a single vector; the table maps every parameter
name to its offset, entry count and shape, turns per-tensor indices into window offsets, and
compares itself with another table (another rank's model, a checkpoint) entry by entry, so a
mismatch is reported by name instead of as an out-of-range access.
"""
from typing import Dict, Iterable, List, NamedTuple, Sequence, Tuple

import torch

Signature = List[Tuple[str, Tuple[int, ...]]]


class Slot(NamedTuple):
    """One tensor's place in the flat buffer."""

    name: str
    offset: int
    numel: int
    shape: Tuple[int, ...]


class FlatLayout:
    """Named shapes laid end to end, in the given order.

    Args:
        named_shapes: ``[(name, shape), ...]``; names must be unique.

    Raises:
        ValueError: a repeated name.
    """

    def __init__(self, named_shapes: Iterable[Tuple[str, Sequence[int]]]):
        self.slots: List[Slot] = []
        offset = 0
        for name, shape in named_shapes:
            shape = tuple(int(s) for s in shape)
            numel = int(torch.Size(shape).numel())
            self.slots.append(Slot(name, offset, numel, shape))
            offset += numel
        self.numel = offset
        self._by_name: Dict[str, Slot] = {s.name: s for s in self.slots}
        if len(self._by_name) != len(self.slots):
            raise ValueError("layout: parameter names must be unique")

    @classmethod
    def of(cls, named_tensors: Iterable[Tuple[str, torch.Tensor]]) -> "FlatLayout":
        """The layout of ``model.named_parameters()`` (or any named tensors)."""
        return cls((name, tuple(t.shape)) for name, t in named_tensors)

    def signature(self) -> Signature:
        """``[(name, shape), ...]``: what two layouts must share to address the same buffer."""
        return [(s.name, s.shape) for s in self.slots]

    def check_matches(self, other: Signature, here: str = "the model", there: str = "the window") -> None:
        """Raise if ``other`` (a signature) differs from this layout.

        Raises:
            ValueError: naming the first differing parameter, ``here`` (this layout's owner) and
                ``there`` (where ``other`` came from).
        """
        mine = self.signature()
        for i, (a, b) in enumerate(zip(mine, other)):
            if (a[0], tuple(a[1])) != (b[0], tuple(b[1])):
                raise ValueError(f"window layout mismatch: parameter #{i} is {a[0]!r} {list(a[1])} in {here}, "
                                 f"{b[0]!r} {list(b[1])} in {there}")
        if len(mine) != len(other):
            raise ValueError(f"window layout mismatch: {len(mine)} parameters in {here}, {len(other)} in {there}")

    def offset(self, name: str) -> int:
        """Where ``name`` starts in the flat buffer."""
        return self._by_name[name].offset

    def flatten(self, named_tensors: Iterable[Tuple[str, torch.Tensor]]) -> torch.Tensor:
        """One new fp32 vector holding the tensors in layout order (names must match)."""
        tensors = dict(named_tensors)
        return torch.cat([tensors[s.name].detach().reshape(-1).float() for s in self.slots]) \
            if self.slots else torch.zeros(0)

    def views(self, flat: torch.Tensor) -> Dict[str, torch.Tensor]:
        """name → a view of ``flat`` shaped like the tensor (writes go through to ``flat``)."""
        if flat.numel() != self.numel:
            raise ValueError(f"layout: buffer has {flat.numel()} entries, the layout needs {self.numel}")
        return {s.name: flat[s.offset: s.offset + s.numel].view(s.shape) for s in self.slots}
