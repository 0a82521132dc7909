"""Gradient buckets filled by backward hooks, so exchanges overlap the rest of backward.

Parameters are grouped, in reverse order (backward produces the last layers' gradients first),
into buckets of about ``cap_numel`` entries, as DDP and Horovod's tensor fusion do. When the
last gradient of a bucket has been accumulated, ``on_ready(bucket_index)`` runs; ``flush``
runs it for buckets whose parameters got no gradient this step (unused parameters), so every
rank issues the same collectives in the same order.
"""
from typing import Callable, List, Tuple

import torch


class GradientBuckets:
    """Tracks which parameters' gradients are ready in the current backward pass."""

    def __init__(self, named_params: List[Tuple[str, torch.Tensor]], on_ready: Callable[[int], None],
                 cap_numel: int = 1 << 22):
        self.buckets: List[List[Tuple[str, torch.Tensor]]] = []
        current, size = [], 0
        for name, param in reversed(named_params):
            if current and size + param.numel() > cap_numel:
                self.buckets.append(current)
                current, size = [], 0
            current.append((name, param))
            size += param.numel()
        if current:
            self.buckets.append(current)
        self.on_ready = on_ready
        self.enabled = True
        self._bucket_of = {id(p): b for b, bucket in enumerate(self.buckets) for _, p in bucket}
        self._waiting = [len(bucket) for bucket in self.buckets]
        self._fired = [False] * len(self.buckets)
        self._handles = [p.register_post_accumulate_grad_hook(self._grad_ready)
                         for _, p in named_params]

    def _grad_ready(self, param: torch.Tensor) -> None:
        if not self.enabled:
            return
        b = self._bucket_of[id(param)]
        if self._fired[b]:
            raise RuntimeError("a gradient became ready twice before step(): accumulating gradients over "
                               "several backward passes is not supported with local_steps=1; call step() "
                               "after every backward, or use local_steps > 1")
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

    def reset(self) -> None:
        """Start a new step."""
        self._waiting = [len(bucket) for bucket in self.buckets]
        self._fired = [False] * len(self.buckets)

    def remove(self) -> None:
        """Unregister the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
