"""The wrapper's checkpoint: a torch optimizer state dict plus the algorithm's state.

``state_dict()`` is the inner optimizer's own (``state``, ``param_groups``, the very tensors it
holds, so ``hvd.broadcast_optimizer_state`` writes into them), with one extra key,
``"hvd_qsparse"``: the algorithm's name and state (memories, shared model, counters, seeds,
bit history). Memories differ per rank: save one file per rank to resume exactly.
``load_state_dict`` takes that, or a plain torch optimizer state dict; the algorithm's state
then starts fresh, with a warning.
"""
import os
import sys
import warnings

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
        self.load_algorithm_state_dict(ours["state"])

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
        opt_state = comm.broadcast_object(self.optimizer.state_dict(), root_rank=root_rank,
                                          name="hvd_qsparse.optimizer_state")
        if comm.rank != root_rank:
            self.optimizer.load_state_dict(opt_state)
