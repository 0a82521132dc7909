"""All hyperparameters and state of asynchronous Qsparse-local-SGD, in one object.

It extends ``QsparseState`` (compressor, H, warm-up, seed, memory m^(r), step, bits): there
``x_hat`` is the model every rank agrees on; here it is x̂^(r), the global model this rank
fetched last, and the global x̂ itself lives in the host's one-sided window.
"""
from typing import Optional

import torch

from hvd_qsparse.algorithms.qsparse_state import QsparseState
from hvd_qsparse.validation import check_choice, check_int
from hvd_qsparse.compression import Compressor
from hvd_qsparse.ops import derive_seed

PROGRESS = ("thread", "none")


class QsparseAsyncState(QsparseState):
    """``QsparseState`` plus this rank's own schedule, the window's place and counters.

    The schedule: after sync number n, the next sync comes ``gap(n)`` steps later, with
    gap(n) drawn from {⌈H/2⌉, ..., H} by a seed of (seed, rank, n). Gaps are therefore ≤ H
    (the paper's condition), differ between ranks (no alignment, no waiting) and are the same
    after a resume. Warm-up steps each sync densely.

    Args:
        compressor: QComp_k for every tensor.
        rank: this rank (its schedule and rounding-noise stream).
        local_steps: H, the largest gap between two syncs of one rank.
        warmup_steps: first steps pushed dense and uncompressed, every step.
        seed: base of the schedule and compressor seeds.
        host_rank: the rank whose memory holds the global x̂.
        progress: ``thread`` (the host runs a progress thread) or ``none``.
        step_budget: total local steps of all ranks together after which ``should_stop`` turns
            True (None: no budget, each rank runs its own loop).
    """

    def __init__(self, compressor: Compressor, rank: int, local_steps: int = 4, warmup_steps: int = 0,
                 seed: int = 0, host_rank: int = 0, progress: str = "thread",
                 step_budget: Optional[int] = None):
        # every tensor alone: the window layout places and reads each tensor by its own offset
        super().__init__(compressor, local_steps, warmup_steps, seed, fusion="tensor")
        # --- hyperparameters of the asynchronous variant --------------------------------------
        self.rank = rank
        self.host_rank = check_int("host_rank", host_rank, 0, "the rank holding the window")
        self.progress = check_choice("progress", progress, PROGRESS)
        self.step_budget = None if step_budget is None else check_int(
            "step_budget", step_budget, 1, "total local steps of all ranks")
        # --- this rank's schedule ---------------------------------------------------------------
        self.syncs = 0                       # pushes so far
        self.last_push_step = 0              # steps taken when this rank last pushed
        self.next_sync = self._gap(0)        # steps taken at which the next push happens
        # --- what the window told us ------------------------------------------------------------
        self.global_steps = 0                # all ranks' pushed local steps, at our last push
        self.fetched_bits = 0                # bits received by fetching x̂ (not sent: reported apart)
        # --- the host's copy of the window, to write back on resume (host only) ---------------
        self.window_snapshot: Optional[dict] = None

    def _gap(self, n: int) -> int:
        low = -(-self.local_steps // 2)
        return low + derive_seed(self.seed, "async-gap", self.rank, n) % (self.local_steps - low + 1)

    def syncs_now(self) -> bool:
        """True when the step just taken (``self.step`` steps done, this one included) ends a gap."""
        return self.is_warmup(self.step - 1) or self.step >= self.next_sync

    def pushed(self) -> int:
        """Advance the schedule after a push at ``self.step``; returns the local steps it covered."""
        covered = self.step - self.last_push_step
        self.syncs += 1
        self.last_push_step = self.step
        self.next_sync = self.step + self._gap(self.syncs)
        return covered

    @property
    def should_stop(self) -> bool:
        """True once the ranks' pushed steps reach ``step_budget`` (as last seen by this rank)."""
        return self.step_budget is not None and self.global_steps >= self.step_budget

    def state_dict(self) -> dict:
        state = super().state_dict()
        state.update(rank=self.rank, host_rank=self.host_rank, syncs=self.syncs,
                     last_push_step=self.last_push_step, next_sync=self.next_sync,
                     global_steps=self.global_steps, fetched_bits=self.fetched_bits,
                     window=self.window_snapshot)
        return state

    def load_state_dict(self, state: dict) -> None:
        for key, mine in (("rank", self.rank), ("host_rank", self.host_rank)):
            if state[key] != mine:
                raise ValueError(f"checkpoint was written with {key}={state[key]}, this optimizer has "
                                 f"{key}={mine}: load each rank's own file, with the same host_rank")
        super().load_state_dict(state)
        self.syncs, self.last_push_step = state["syncs"], state["last_push_step"]
        self.next_sync, self.global_steps = state["next_sync"], state["global_steps"]
        self.fetched_bits = state["fetched_bits"]
        window = state["window"]
        self.window_snapshot = None if window is None else {
            "layout": list(window["layout"]), "x_hat": window["x_hat"].detach().clone(),
            "counters": torch.as_tensor(window["counters"]).clone()}
