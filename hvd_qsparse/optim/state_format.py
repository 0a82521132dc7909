"""The wrapper's checkpoint: a torch optimizer state dict plus the algorithm's state.

``state_dict()`` is the inner optimizer's own (``state``, ``param_groups``, the very tensors it
holds, so ``hvd.broadcast_optimizer_state`` writes into them), with one extra key,
``"hvd_qsparse"``: the algorithm's name and state (memories, shared model, counters, seeds,
bit history). Memories differ per rank: save one file per rank to resume exactly.
``load_state_dict`` takes that, or a plain torch optimizer state dict; the algorithm's state
then starts fresh, with a warning.

Devices: a state dict may come from another device (a checkpoint written on ``cuda:0`` and
read on a CPU-only machine or on ``cuda:1``). ``load_state_dict`` puts every tensor of the
algorithm's state on the device of the parameter it is filed under (the nearest dict key that
names a parameter), the others on the first parameter's device; the inner optimizer's own
``load_state_dict`` does the same for its state (``torch.optim.Optimizer`` casts each entry to
its parameter's device, and keeps a non-capturable ``step`` where it is). ``broadcast_state``
sends the optimizer state from the CPU, so it lands in host memory on every rank, never on
the root's GPU.
"""
import os
import sys
import warnings
from typing import Callable, Hashable, Optional

import torch

STATE_KEY = "hvd_qsparse"


def called_from_broadcast_optimizer_state(depth: int = 4) -> bool:
    """True when ``hvd.broadcast_optimizer_state`` calls ``step()`` to create a fresh optimizer's
    state. Horovod then steps only the inner optimizer of its own wrapper, and may do so on some
    ranks only (those whose state is empty), so no collective may run: the same here."""
    frame = sys._getframe(2)
    for _ in range(depth):
        if frame is None:
            return False
        code = frame.f_code
        if code.co_name == "broadcast_optimizer_state" and code.co_filename.endswith(
                os.path.join("horovod", "torch", "functions.py")):
            return True
        frame = frame.f_back
    return False


def map_tensors(tree, fn: Callable[[torch.Tensor, Optional[Hashable]], torch.Tensor], key=None):
    """``tree`` (nested dicts, lists, tuples) rebuilt with every tensor ``t`` replaced by
    ``fn(t, key)``, ``key`` being the dict key nearest above ``t`` (None at the top)."""
    if isinstance(tree, torch.Tensor):
        return fn(tree, key)
    if isinstance(tree, dict):
        return {k: map_tensors(v, fn, k) for k, v in tree.items()}
    if type(tree) in (list, tuple):  # exact types: a named tuple is left as it is
        return type(tree)(map_tensors(v, fn, key) for v in tree)
    return tree


def optimizer_state_for_broadcast(optimizer: torch.optim.Optimizer) -> dict:
    """``optimizer.state_dict()`` with every tensor on the CPU (CPU tensors are not copied).

    ``broadcast_object`` pickles its object, and a pickled CUDA tensor is unpickled on the GPU
    index it was on: every rank would receive the root's state on the root's GPU (``cuda:0``
    for all of them), or fail where there is none."""
    return map_tensors(optimizer.state_dict(), lambda tensor, _: tensor.cpu())


class TorchStateFormat:
    """``state_dict``/``load_state_dict``/``broadcast_state`` for ``WrappedOptimizer``."""

    def state_dict(self) -> dict:
        state = self.optimizer.state_dict()
        state[STATE_KEY] = {"algorithm": self.algorithm, "state": self.algorithm_state_dict()}
        return state

    def algorithm_state_dict(self) -> dict:
        """The algorithm's state alone (``state_dict()["hvd_qsparse"]["state"]``)."""
        return self.algorithm_state.state_dict()

    def load_algorithm_state_dict(self, state: dict) -> None:
        """Restore what ``algorithm_state_dict`` returned."""
        self.algorithm_state.load_state_dict(state)

    def load_state_dict(self, state_dict: dict) -> None:
        ours = state_dict.get(STATE_KEY)
        self.optimizer.load_state_dict({k: v for k, v in state_dict.items() if k != STATE_KEY})
        self._synchronized, self._verdict = False, None
        self._on_step_end()  # forget exchanges of an interrupted step (an elastic restore)
        if ours is None:
            warnings.warn(f"{type(self).__name__}.load_state_dict: a plain torch optimizer state dict; the "
                          f"{self.algorithm} state (memories, shared model, counters) starts fresh")
            self._reset_algorithm_state()
            return
        if ours.get("algorithm") != self.algorithm:
            raise ValueError(f"checkpoint was written by algorithm {ours.get('algorithm')!r}, this optimizer "
                             f"runs {self.algorithm!r}")
        self.load_algorithm_state_dict(self._on_parameter_devices(ours["state"]))

    def _on_parameter_devices(self, state: dict) -> dict:
        """``state`` with each tensor on the device of the parameter its nearest dict key names,
        the others on the first parameter's device (tensors already there are not copied)."""
        if not self.named_params:
            return state
        devices = {name: param.device for name, param in self.named_params}
        first = self.named_params[0][1].device
        return map_tensors(state, lambda tensor, key: tensor.to(devices.get(key, first)))

    def _reset_algorithm_state(self) -> None:
        self.algorithm_state = self._new_algorithm_state()

    @torch.no_grad()
    def broadcast_state(self, root_rank: int = 0) -> None:
        """Make every rank start from ``root_rank``'s parameters and optimizer state.

        Parameters travel as raw bytes (bf16 and non-contiguous ones too); the optimizer state
        by ``broadcast_object``, rather than ``hvd.broadcast_optimizer_state``, which takes a
        zero-gradient step to create missing state (that moves parameters under weight decay).
        """
        comm = self.comm
        if not comm.included:
            return
        self._ensure_same_model()
        for name, param in self.named_params:
            raw = param.detach().contiguous()
            if raw.dtype == torch.bfloat16:
                raw = raw.view(torch.int16)
            got = comm.broadcast(raw, root_rank=root_rank, name=f"hvd_qsparse.bcast.{name}")
            param.copy_(got.view(param.dtype).view(param.shape))
        opt_state = comm.broadcast_object(optimizer_state_for_broadcast(self.optimizer), root_rank=root_rank,
                                          name="hvd_qsparse.optimizer_state")
        if comm.rank != root_rank:
            self.optimizer.load_state_dict(opt_state)  # casts each state tensor to its parameter's device
