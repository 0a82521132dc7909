"""Where a step's time goes: compression and communication, measured by the algorithm itself.

The training job reads and clears the figures after every step (``pop``) for its metrics;
nothing is kept between steps, so a long run does not grow memory.

On a CUDA device the host returns from a kernel launch long before the kernel has run, so a
host clock would time the launches only: a timer made for a CUDA device (``device`` argument,
attribute or ``for_parameters``) records a pair of CUDA events around each phase instead, and
``pop`` waits for them and reads the time between them. Elsewhere, or when CUDA is not
available, it reads ``time.perf_counter``.
"""
import time
from contextlib import contextmanager
from typing import Dict, Iterable, List, Optional, Tuple

import torch


class StepTimer:
    """Seconds spent in named phases since the last ``pop``.

    Args:
        device: the device the timed work runs on (it may also be set later, through the
            ``device`` attribute); a CUDA device, when CUDA is available, times with events.

    Attributes:
        uses_events: True when phases are timed with CUDA events (follows ``device``).
    """

    def __init__(self, device=None):
        self._seconds: Dict[str, float] = {}
        #: (phase, start event, end event) of the phases timed on the GPU since the last ``pop``
        self._events: List[Tuple[str, "torch.cuda.Event", "torch.cuda.Event"]] = []
        self.device = device

    @classmethod
    def for_parameters(cls, params: Iterable[torch.Tensor]) -> "StepTimer":
        """A timer for the device of the first of ``params`` (a host timer when there is none)."""
        first = next(iter(params), None)
        return cls(None if first is None else first.device)

    @property
    def device(self) -> Optional[torch.device]:
        return self._device

    @device.setter
    def device(self, device) -> None:
        self._device = None if device is None else torch.device(device)
        self.uses_events = (self._device is not None and self._device.type == "cuda"
                            and torch.cuda.is_available())

    @contextmanager
    def phase(self, name: str):
        """Time the ``with`` block under ``name`` (nested or repeated blocks add up)."""
        if self.uses_events:
            with self._timed_on_gpu(name):
                yield
            return
        start = time.perf_counter()
        try:
            yield
        finally:
            self._seconds[name] = self._seconds.get(name, 0.0) + time.perf_counter() - start

    @contextmanager
    def _timed_on_gpu(self, name: str):
        # On the device's current stream, which the timed work is queued on (not the stream of
        # whatever device happens to be current).
        stream = torch.cuda.current_stream(self._device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record(stream)
        try:
            yield
        finally:
            end.record(stream)
            self._events.append((name, start, end))

    def pop(self) -> Dict[str, float]:
        """The phases' seconds since the last call, then start again from zero."""
        for name, start, end in self._events:
            end.synchronize()  # until the phase's GPU work has run (at once when it already has)
            self._seconds[name] = self._seconds.get(name, 0.0) + start.elapsed_time(end) / 1000.0
        seconds, self._seconds, self._events = self._seconds, {}, []
        return seconds
