"""What a payload stands for, as its encoder already knew it: fp32 values, at indices or dense.

An encoder computes the values it sends (the k kept entries, the quantized levels times the
scale) before it packs them, so it hands them back beside the payload. Error feedback then
updates its memory from them, and an algorithm applies its own contribution from them: the
sender never unpacks what it just packed.
"""
from typing import NamedTuple, Optional

import torch


class Selection(NamedTuple):
    """D(payload) without decoding: ``values`` at ``indices`` (None: all entries, in order).

    Attributes:
        values: fp32, flat; k entries, or d when dense.
        indices: ascending int64 positions of the values in the flat tensor, or None.
    """

    values: torch.Tensor
    indices: Optional[torch.Tensor] = None

    @property
    def is_dense(self) -> bool:
        return self.indices is None

    def dense(self, numel: int) -> torch.Tensor:
        """The flat fp32 tensor of ``numel`` entries this selection stands for."""
        if self.indices is None:
            return self.values.reshape(-1).float()
        out = torch.zeros(numel, dtype=torch.float32, device=self.values.device)
        return out.index_add_(0, self.indices, self.values.float())

    def residual(self, compensated: torch.Tensor) -> torch.Tensor:
        """``compensated − D(payload)``: in place for a sparse selection (only k entries move),
        out of place for a dense one (whose values may be ``compensated`` itself)."""
        if self.indices is None:
            return compensated - self.values.reshape(compensated.shape).to(compensated.dtype)
        compensated.view(-1).index_add_(0, self.indices, self.values.to(compensated.dtype), alpha=-1)
        return compensated

    def offset(self, shift: int) -> "Selection":
        """The same selection with indices shifted by ``shift`` (a tensor inside a flat buffer)."""
        return self if self.indices is None else Selection(self.values, self.indices + shift)
