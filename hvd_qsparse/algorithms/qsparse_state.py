"""All hyperparameters and state of synchronous Qsparse-local-SGD, in one object."""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch

from hvd_qsparse.comm import BitCounter
from hvd_qsparse.compression import Compressor
from hvd_qsparse.error_feedback import ErrorFeedback
from hvd_qsparse.optim.fusion import FUSIONS
from hvd_qsparse.optim.outer import OuterOptimizer
from hvd_qsparse.validation import check_choice, check_count, check_decay, check_fraction, check_int

#: ``--exchange``: ``auto`` resolves by the compressor (``comm.registry.resolve``); ``sharded``
#: adds the owners' compensated compression (``algorithms.qsparse`` states the rule)
EXCHANGES = ("auto", "allgather", "allreduce", "sharded", "dense")


@dataclass
class PendingSync:
    """A model-averaging round started and not yet applied (``sync_delay`` > 0).

    What a checkpoint keeps are its inputs, from which the exchange is run again on resume and
    gives the same result: ``origin`` x_s (this rank's fragment parameters at the start) and
    ``memory_before`` (the fragment's memories before the compression, None for one not yet made).
    """

    fragment: int
    step: int
    origin: Dict[str, torch.Tensor]
    memory_before: Dict[str, Optional[torch.Tensor]]
    round: Any = field(default=None, compare=False)  # the exchange in flight; None after a resume

    def state_dict(self) -> dict:
        return {"fragment": self.fragment, "step": self.step,
                "origin": {n: t.detach().clone() for n, t in self.origin.items()},
                "memory_before": {k: None if t is None else t.detach().clone() for k, t in self.memory_before.items()}}

    @classmethod
    def from_state_dict(cls, state: dict) -> "PendingSync":
        return cls(state["fragment"], state["step"], dict(state["origin"]), dict(state["memory_before"]))


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
        memory_decay: β, the memory's decay (``error_feedback``; 1.0: none).
        sync_delay: τ, local steps a round's exchange overlaps before it is applied (0 ≤ τ < H).
        mixing: α, the weight the local model keeps when a round is applied (0 ≤ α < 1).
        fragments: F, fragments of the model synchronizing on a staggered schedule (1 ≤ F ≤ H).
        outer: the ``OuterOptimizer`` that applies the averaged change to x̂, or None (x̂ ← x̂ − Δ̄).
        server_compressor: with ``exchange="sharded"``, the owners' operator Q_s (None: the
            workers' ``compressor``).
    """

    def __init__(self, compressor: Compressor, local_steps: int = 1, warmup_steps: int = 0,
                 seed: int = 0, exchange: str = "auto", fusion: str = "bucket", memory_decay: float = 1.0,
                 sync_delay: int = 0, mixing: float = 0.0, fragments: int = 1,
                 outer: Optional[OuterOptimizer] = None, server_compressor: Optional[Compressor] = None):
        # --- hyperparameters --------------------------------------------------------------
        self.compressor = compressor
        self.local_steps = check_int("local_steps", local_steps, 1, "H, steps between synchronizations")
        self.warmup_steps = check_int("warmup_steps", warmup_steps, 0, "dense steps before compression")
        self.seed = check_int("seed", seed, 0, "base random seed")
        self.exchange = check_choice("exchange", exchange, EXCHANGES)
        self.fusion = check_choice("fusion", fusion, FUSIONS)
        h = self.local_steps
        self.sync_delay = check_count("sync_delay", sync_delay, 0, h - 1,
                                      f"local steps a round overlaps, below H = {h}")
        self.fragments = check_count("fragments", fragments, 1, h, f"at most H = {h}: one round per fragment per H steps")
        self.mixing = check_fraction(mixing, "mixing", "the local model's weight when a round is applied")
        if h == 1 and (outer is not None or self.mixing > 0):
            raise ValueError("outer optimizer and mixing apply to model averaging, which needs local_steps "
                             "(-H) >= 2; with H = 1 the inner optimizer steps with the exchanged gradient")
        # --- the last synchronized model x̂, identical on every rank -----------------------
        self.x_hat: Dict[str, torch.Tensor] = {}
        self.outer = outer
        if self.sharded and self.sync_delay:
            raise ValueError("sync_delay (--sync-delay) must be 0 with exchange='sharded': its two passes run "
                             "at once, so a round cannot overlap local steps")
        if server_compressor is not None and not self.sharded:
            raise ValueError("server_compressor (--server-ratio) applies to exchange='sharded' only, "
                             f"got exchange={self.exchange!r}")
        self.server_compressor = server_compressor or compressor
        # --- this rank's error-feedback memory m^(r) ------------------------------------------
        self.error_feedback = ErrorFeedback(check_decay(memory_decay))
        # --- the owners' memories s_j of the regions this rank owns (exchange="sharded") -------
        self.server_memory: Optional[ErrorFeedback] = ErrorFeedback() if self.sharded else None
        #: regions each fused bucket is cut into: R (the ranks, set by the engine) when sharded, else 1
        self.regions = 1
        # --- rounds started and not yet applied, by fragment -----------------------------------
        self.pending: Dict[int, PendingSync] = {}
        # --- counters -------------------------------------------------------------------------
        self.step = 0
        self.bits = BitCounter()

    @property
    def sharded(self) -> bool:
        return self.exchange == "sharded"

    def snapshot_memories(self) -> tuple:
        """Both memories as they are (``restore_memories`` puts them back)."""
        return (self.error_feedback.snapshot(), None if self.server_memory is None else self.server_memory.snapshot())

    def restore_memories(self, snapshot: tuple) -> None:
        worker, server = snapshot
        self.error_feedback.restore(worker)
        if server is not None:
            self.server_memory.restore(server)

    def is_warmup(self, step: int) -> bool:
        return step < self.warmup_steps

    def averages_gradients(self, step: int) -> bool:
        """True on steps where gradients are exchanged (warm-up, or every step when H = 1)."""
        return self.is_warmup(step) or self.local_steps == 1

    def syncs_model_after(self, step: int) -> bool:
        """True when a model-averaging round starts after step ``step`` (t + 1 ∈ I_T)."""
        return bool(self.fragments_due(step))

    def fragments_due(self, step: int) -> List[int]:
        """The fragments whose round starts after step ``step``: fragment f when
        (t + 1) mod H = ⌊f·H/F⌋ (``optim.fragments``; F = 1: the whole model every H-th step)."""
        if self.averages_gradients(step):
            return []
        phase = (step + 1) % self.local_steps
        return [f for f in range(self.fragments) if f * self.local_steps // self.fragments == phase]

    @property
    def memory_decay(self) -> float:
        return self.error_feedback.decay

    def state_dict(self) -> dict:
        return {"step": self.step, "seed": self.seed, "local_steps": self.local_steps, "fusion": self.fusion,
                "warmup_steps": self.warmup_steps, "compressor": self.compressor.name,
                "compressor_params": self.compressor.params(),
                "x_hat": {n: t.detach().clone() for n, t in self.x_hat.items()},
                "error_feedback": self.error_feedback.state_dict(), "bits": self.bits.state_dict(),
                "memory_decay": self.memory_decay, "sync_delay": self.sync_delay, "mixing": self.mixing,
                "fragments": self.fragments, "outer": None if self.outer is None else self.outer.state_dict(),
                "server_memory": None if self.server_memory is None else self.server_memory.state_dict(),
                "server_compressor": self.server_compressor.name, "server_params": self.server_compressor.params(),
                "regions": self.regions,
                "pending": [p.state_dict() for _, p in sorted(self.pending.items())]}

    def load_state_dict(self, state: dict) -> None:
        """Restore a checkpoint written with the same compressor (and parameters), H and warm-up.

        Raises:
            ValueError: the checkpoint's compressor, its parameters, H, warm-up, fusion (the
                memories are keyed by fused bucket or by tensor) or round settings (memory decay,
                sync delay, mixing, fragments, outer optimizer) differ.
        """
        if state["compressor"] != self.compressor.name:
            raise ValueError(f"checkpoint was written with compressor {state['compressor']!r}, "
                             f"this optimizer uses {self.compressor.name!r}")
        mine = {"compressor_params": self.compressor.params(), "local_steps": self.local_steps,
                "warmup_steps": self.warmup_steps, "fusion": self.fusion, "memory_decay": self.memory_decay,
                "sync_delay": self.sync_delay, "mixing": self.mixing, "fragments": self.fragments,
                "outer": None if self.outer is None else self.outer.kind, "sharded": self.sharded,
                "server_params": self.server_compressor.params(), "regions": self.regions}
        # Checkpoints from before fusion kept one memory per tensor; from before the outer
        # optimizer, they ran today's defaults.
        state = {"fusion": "tensor", "memory_decay": 1.0, "sync_delay": 0, "mixing": 0.0, "fragments": 1,
                 "outer": None, "pending": [], "server_memory": None, "server_params": self.compressor.params(),
                 "regions": 1, **state}
        state = {**state, "outer_state": state["outer"], "outer": state["outer"] and state["outer"]["kind"],
                 "sharded": state["server_memory"] is not None}
        for key, value in mine.items():
            if key in state and state[key] != value:
                raise ValueError(f"checkpoint was written with {key}={state[key]!r}, this optimizer has "
                                 f"{key}={value!r}; resume with the same settings")
        self.step, self.seed = state["step"], state["seed"]
        self.x_hat = {n: t.detach().clone() for n, t in state["x_hat"].items()}
        self.error_feedback.load_state_dict(state["error_feedback"])
        if self.server_memory is not None:
            self.server_memory.load_state_dict(state["server_memory"])
        self.bits.load_state_dict(state["bits"])
        if self.outer is not None:
            self.outer.load_state_dict(state["outer_state"])
        self.pending = {p["fragment"]: PendingSync.from_state_dict(p) for p in state["pending"]}
