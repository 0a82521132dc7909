"""All hyperparameters and state of GD-SEC, in one object (as torch's PowerSGDState)."""
from typing import Dict

import torch

from hvd_qsparse.comm import BitCounter
from hvd_qsparse.compression import TopK
from hvd_qsparse.error_feedback import ErrorFeedback
from hvd_qsparse.validation import check_beta, check_bool, check_density, check_xi


def _copy(tensors: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    return {name: t.detach().clone() for name, t in tensors.items()}


class GdsecState:
    """Hyperparameters, this worker's transmitted combination and error, the server's view.

    Every tensor is fp32 and keyed by parameter name; entries are created as zeros on first use.

    Args:
        beta: β ∈ (0, 1], weight of the previously transmitted combination ĝ_m.
        xi: ξ >= 0, threshold scale: entry i is withheld while |Δ_i| <= (ξ/M)·|θ^k_i − θ^{k−1}_i|.
        max_density: ρ ∈ (0, 1], at most ⌈ρ·d⌉ entries of a d-entry tensor go per step (1: no cap).
        error_correction: keep the withheld part in e_m (the paper); False keeps e_m = 0 (EF21).
    """

    def __init__(self, beta: float = 1.0, xi: float = 0.0, max_density: float = 1.0,
                 error_correction: bool = True):
        # --- hyperparameters ------------------------------------------------------------------
        self.beta = check_beta(beta)
        self.xi = check_xi(xi)
        self.max_density = check_density(max_density)
        self._cap = TopK(self.max_density)  # its k(d) is the cap, rounded as top-k rounds
        self.error_correction = check_bool("error_correction", error_correction)
        # --- worker m: ĝ_m, the combination of what it transmitted (the server knows it too) ----
        self.g_hat: Dict[str, torch.Tensor] = {}
        # --- worker m: the error term e_m, what it has not transmitted yet ---------------------
        self.error_feedback = ErrorFeedback()
        # --- the server's view ĝ = Σ_m ĝ_m, kept identically on every rank ---------------------
        self.server_view: Dict[str, torch.Tensor] = {}
        # --- θ^{k−1}, the parameters one step ago (thresholds scale with how far θ moved) -------
        self.previous: Dict[str, torch.Tensor] = {}
        # --- counters ---------------------------------------------------------------------------
        self.step = 0
        self.bits = BitCounter()

    @staticmethod
    def _entry(table: Dict[str, torch.Tensor], name: str, like: torch.Tensor) -> torch.Tensor:
        if name not in table:
            table[name] = torch.zeros(like.shape, dtype=torch.float32, device=like.device)
        return table[name]

    def g_hat_of(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """ĝ_m for the tensor ``name`` (updated in place)."""
        return self._entry(self.g_hat, name, like)

    def server_view_of(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """ĝ = Σ_m ĝ_m for the tensor ``name`` (updated in place)."""
        return self._entry(self.server_view, name, like)

    def error_of(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """e_m for the tensor ``name`` (zeros before the first step; read only)."""
        return self.error_feedback.memory.get(name, torch.zeros(like.shape, dtype=torch.float32, device=like.device))

    def threshold(self, name: str, param: torch.Tensor, ranks: int) -> torch.Tensor:
        """(ξ/M)·|θ^k − θ^{k−1}| per entry, and θ^k kept as the next step's θ^{k−1}.

        At the first step θ^0 = θ^1, so every non-zero entry is transmitted.
        """
        current = param.detach().float()
        previous = self.previous.get(name, current)
        threshold = (self.xi / ranks) * (current - previous).abs()
        self.previous[name] = current.clone()
        return threshold

    @property
    def memory(self):
        """The error terms' ``ErrorFeedback``, or None when they are kept at zero."""
        return self.error_feedback if self.error_correction else None

    def max_count(self, numel: int):
        """The most entries of a ``numel``-entry tensor sent per step (None when uncapped)."""
        return None if self.max_density == 1.0 else self._cap.k(numel)

    def snapshot(self) -> dict:
        """What a step changes before its exchange (error terms and θ^{k−1}); entries are
        replaced, not written into, so shallow copies stay exact."""
        return {"error": self.error_feedback.snapshot(), "previous": dict(self.previous)}

    def restore(self, snapshot: dict) -> None:
        """Undo a step that every rank skips."""
        self.error_feedback.restore(snapshot["error"])
        self.previous = dict(snapshot["previous"])

    def state_dict(self) -> dict:
        return {"beta": self.beta, "xi": self.xi, "max_density": self.max_density,
                "error_correction": self.error_correction, "step": self.step, "g_hat": _copy(self.g_hat),
                "server_view": _copy(self.server_view), "previous": _copy(self.previous),
                "error_feedback": self.error_feedback.state_dict(), "bits": self.bits.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore a checkpoint written with the same β, ξ, cap and error correction (older
        checkpoints: uncapped, with error correction).

        Raises:
            ValueError: one of those differs from this optimizer's.
        """
        state = {"max_density": 1.0, "error_correction": True, **state}
        for key in ("beta", "xi", "max_density", "error_correction"):
            if state[key] != getattr(self, key):
                raise ValueError(f"checkpoint was written with {key}={state[key]!r}, this optimizer uses "
                                 f"{key}={getattr(self, key)!r}; build the optimizer with the checkpoint's value")
        self.step = state["step"]
        self.g_hat = _copy(state["g_hat"])
        self.server_view = _copy(state["server_view"])
        self.previous = _copy(state["previous"])
        self.error_feedback.load_state_dict(state["error_feedback"])
        self.bits.load_state_dict(state["bits"])
