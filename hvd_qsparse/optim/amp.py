"""What a GradScaler tells ``step()``, and how the wrapper keeps AMP steps right on every rank.

The wrapper sets ``_step_supports_amp_scaling``, so ``scaler.step(opt)`` does not unscale the
gradients or skip ``step()`` itself; it sets ``opt.grad_scale`` (the loss scale s, or None when
the user already called ``scaler.unscale_(opt)``) and ``opt.found_inf`` (this rank's overflow
flag) and calls ``step()`` on every rank. Then:

- Exchanges carry unscaled values g/s, so error-feedback memories stay in gradient units and
  ranks may even hold different scales. Gradients compressed in backward hooks, before the scale
  is known, use the scale of the previous step; when it changed (the first step, after an
  overflow, at each growth), every rank rolls its memories back and redoes the exchange with
  the right scale (agreed in ``optim.agreement``; it costs one more exchange on those steps).
- An overflow on any rank skips the step on every rank, local steps included (H > 1: one
  small agreement per step while a GradScaler is stepping).
- Horovod's recipe ``synchronize(); scaler.unscale_(opt); clip; with skip_synchronize():
  scaler.step(opt)`` exchanges before the scale is known: ``synchronize`` writes the average in
  loss-scale units, which ``unscale_`` then divides, and after an agreed overflow it writes NaN
  into every rank's gradients so that every rank's scaler backs off. Under this recipe the
  memories hold loss-scaled residuals: a scale change re-weights the pending residual once by
  the change (2× or ½); plain ``scaler.step(opt)`` has no such effect.
"""
from dataclasses import dataclass
from typing import Optional


@dataclass
class AmpInputs:
    """What a GradScaler handed to this ``step()`` (all defaults when none is stepping)."""

    active: bool = False            # a GradScaler is stepping this optimizer
    scale: Optional[float] = None   # s, when the gradients are still scaled
    overflow: bool = False          # this rank's gradients held inf/NaN

    @classmethod
    def of(cls, optimizer) -> "AmpInputs":
        found_inf = getattr(optimizer, "found_inf", None)
        if found_inf is None:
            return cls()
        grad_scale = getattr(optimizer, "grad_scale", None)
        return cls(active=True, scale=None if grad_scale is None else float(grad_scale),
                   overflow=bool(float(found_inf) > 0))

    @property
    def inv_scale(self) -> Optional[float]:
        return None if self.scale is None else 1.0 / self.scale
