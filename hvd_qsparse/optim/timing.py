"""Where a step's time goes: compression and communication, measured by the algorithm itself.

The training job reads and clears the figures after every step (``pop``) for its metrics;
nothing is kept between steps, so a long run does not grow memory.
"""
import time
from contextlib import contextmanager
from typing import Dict


class StepTimer:
    """Seconds spent in named phases since the last ``pop``."""

    def __init__(self):
        self._seconds: Dict[str, float] = {}

    @contextmanager
    def phase(self, name: str):
        """Time the ``with`` block under ``name`` (nested or repeated blocks add up)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self._seconds[name] = self._seconds.get(name, 0.0) + time.perf_counter() - start

    def pop(self) -> Dict[str, float]:
        """The phases' seconds since the last call, then start again from zero."""
        seconds, self._seconds = self._seconds, {}
        return seconds
