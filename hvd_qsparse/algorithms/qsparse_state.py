"""All hyperparameters and state of synchronous Qsparse-local-SGD, in one object."""
from typing import Dict

import torch

from hvd_qsparse.comm import BitCounter
from hvd_qsparse.compression import Compressor
from hvd_qsparse.error_feedback import ErrorFeedback
from hvd_qsparse.optim.fusion import FUSIONS
from hvd_qsparse.validation import check_choice, check_int

#: ``--exchange``: ``auto`` resolves by the compressor (``comm.registry.resolve``)
EXCHANGES = ("auto", "allgather", "allreduce")


class QsparseState:
    """Hyperparameters, the shared model, memories and counters (as torch's PowerSGDState).

    Args:
        compressor: the operator QComp_k applied to every tensor.
        local_steps: H, steps between synchronizations (1 = compressed SGD every step).
        warmup_steps: first steps with dense gradient averaging and no compression.
        seed: base of the per-(step, tensor) seeds (rand-k indices, QSGD rounding).
        exchange: ``auto`` (allreduce for summable compressors, allgather otherwise),
            ``allgather`` or ``allreduce``.
        fusion: ``bucket`` (consecutive tensors compressed as one vector, ``optim.fusion``) or
            ``tensor`` (every tensor alone).
    """

    def __init__(self, compressor: Compressor, local_steps: int = 1, warmup_steps: int = 0,
                 seed: int = 0, exchange: str = "auto", fusion: str = "bucket"):
        # --- hyperparameters --------------------------------------------------------------
        self.compressor = compressor
        self.local_steps = check_int("local_steps", local_steps, 1, "H, steps between synchronizations")
        self.warmup_steps = check_int("warmup_steps", warmup_steps, 0, "dense steps before compression")
        self.seed = check_int("seed", seed, 0, "base random seed")
        self.exchange = check_choice("exchange", exchange, EXCHANGES)
        self.fusion = check_choice("fusion", fusion, FUSIONS)
        # --- the last synchronized model x̂, identical on every rank -----------------------
        self.x_hat: Dict[str, torch.Tensor] = {}
        # --- this rank's error-feedback memory m^(r) ------------------------------------------
        self.error_feedback = ErrorFeedback()
        # --- counters -------------------------------------------------------------------------
        self.step = 0
        self.bits = BitCounter()

    def is_warmup(self, step: int) -> bool:
        return step < self.warmup_steps

    def averages_gradients(self, step: int) -> bool:
        """True on steps where gradients are exchanged (warm-up, or every step when H = 1)."""
        return self.is_warmup(step) or self.local_steps == 1

    def syncs_model_after(self, step: int) -> bool:
        """True when step ``step`` ends a round of H local steps (t + 1 ∈ I_T)."""
        return not self.averages_gradients(step) and (step + 1) % self.local_steps == 0

    def state_dict(self) -> dict:
        return {"step": self.step, "seed": self.seed, "local_steps": self.local_steps, "fusion": self.fusion,
                "warmup_steps": self.warmup_steps, "compressor": self.compressor.name,
                "compressor_params": self.compressor.params(),
                "x_hat": {n: t.detach().clone() for n, t in self.x_hat.items()},
                "error_feedback": self.error_feedback.state_dict(), "bits": self.bits.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore a checkpoint written with the same compressor (and parameters), H and warm-up.

        Raises:
            ValueError: the checkpoint's compressor, its parameters, H, warm-up or fusion differ
                (the memories are keyed by fused bucket or by tensor).
        """
        if state["compressor"] != self.compressor.name:
            raise ValueError(f"checkpoint was written with compressor {state['compressor']!r}, "
                             f"this optimizer uses {self.compressor.name!r}")
        mine = {"compressor_params": self.compressor.params(), "local_steps": self.local_steps,
                "warmup_steps": self.warmup_steps, "fusion": self.fusion}
        # Checkpoints from before fusion existed kept one memory per tensor.
        state = {"fusion": "tensor", **state}
        for key, value in mine.items():
            if key in state and state[key] != value:
                raise ValueError(f"checkpoint was written with {key}={state[key]!r}, this optimizer has "
                                 f"{key}={value!r}; resume with the same settings")
        self.step, self.seed = state["step"], state["seed"]
        self.x_hat = {n: t.detach().clone() for n, t in state["x_hat"].items()}
        self.error_feedback.load_state_dict(state["error_feedback"])
        self.bits.load_state_dict(state["bits"])
