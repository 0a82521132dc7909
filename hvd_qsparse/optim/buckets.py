"""Gradient buckets filled by backward hooks, so exchanges overlap the rest of backward.

Parameters are grouped, in reverse order (backward produces the last layers' gradients first),
into buckets of about ``cap_numel`` entries, as DDP and Horovod's tensor fusion do, or into the
groups the user gave (Horovod's ``groups``). A parameter is ready once its gradient has been
accumulated ``passes`` times (Horovod's ``backward_passes_per_step``); when every parameter of
a bucket is ready, ``on_ready(bucket_index)`` runs. ``flush`` runs it for buckets whose
parameters got fewer gradients this step (unused parameters), so every rank issues the same
collectives in the same order.
"""
from typing import Callable, List, Optional, Sequence, Tuple

import torch


def size_capped(named_params: Sequence[Tuple[str, torch.Tensor]], cap_numel: int) -> List[List[str]]:
    """Names in reverse order, cut into buckets of about ``cap_numel`` entries."""
    buckets, current, size = [], [], 0
    for name, param in reversed(named_params):
        if current and size + param.numel() > cap_numel:
            buckets.append(current)
            current, size = [], 0
        current.append(name)
        size += param.numel()
    if current:
        buckets.append(current)
    return buckets


class GradientBuckets:
    """Tracks which parameters' gradients are ready in the current step.

    Args:
        named_params: ``[(name, param)]`` of the parameters exchanged.
        on_ready: called with a bucket index when all its gradients are ready.
        cap_numel: entries per bucket when ``groups`` is None.
        passes: backward passes per step.
        groups: bucket membership by name (Horovod's ``groups``), or None.
    """

    def __init__(self, named_params: List[Tuple[str, torch.Tensor]], on_ready: Callable[[int], None],
                 cap_numel: int = 1 << 22, passes: int = 1, groups: Optional[List[List[str]]] = None):
        by_name = dict(named_params)
        names = groups if groups is not None else size_capped(named_params, cap_numel)
        self.buckets: List[List[Tuple[str, torch.Tensor]]] = [[(n, by_name[n]) for n in group] for group in names]
        self.on_ready = on_ready
        self.passes = passes
        self.enabled = True
        self._bucket_of = {id(p): b for b, bucket in enumerate(self.buckets) for _, p in bucket}
        self._handles = [p.register_post_accumulate_grad_hook(self._grad_ready) for _, p in named_params]
        self.reset()

    def _grad_ready(self, param: torch.Tensor) -> None:
        if not self.enabled:
            return
        key = id(param)
        if self._seen.get(key, 0) >= self.passes:
            raise RuntimeError(f"a gradient was computed more than backward_passes_per_step={self.passes} times "
                               "before step(): call step() after that many backward passes, or raise "
                               "backward_passes_per_step (set_backward_passes_per_step) to accumulate locally")
        self._seen[key] = self._seen.get(key, 0) + 1
        if self._seen[key] < self.passes:
            return
        b = self._bucket_of[key]
        self._waiting[b] -= 1
        if self._waiting[b] == 0:
            self._fired[b] = True
            self.on_ready(b)

    def flush(self) -> None:
        """Fire every bucket that has not fired yet (some of its gradients never came)."""
        for b, fired in enumerate(self._fired):
            if not fired:
                self._fired[b] = True
                self.on_ready(b)

    @property
    def any_fired(self) -> bool:
        return any(self._fired)

    def reset(self) -> None:
        """Start a new step."""
        self._seen = {}
        self._waiting = [len(bucket) for bucket in self.buckets]
        self._fired = [False] * len(self.buckets)

    def remove(self) -> None:
        """Unregister the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
