"""All hyperparameters and state of RI-SGD, in one object (as torch's PowerSGDState)."""
from typing import List, Optional, Tuple

from hvd_qsparse.algorithms.qsparse_state import QsparseState
from hvd_qsparse.validation import check_bool, check_int


def check_hyperparameters(redundancy, num_chunks, non_iid, commit_every) -> None:
    """Validate RI-SGD's own hyperparameters (ValueError naming the parameter and the range)."""
    check_int("redundancy", redundancy, 1, "q, chunks per worker")
    if num_chunks is not None:
        check_int("num_chunks", num_chunks, redundancy, "p, chunks of the data set, at least q")
    check_bool("non_iid", non_iid)
    check_int("commit_every", commit_every, 1, "sync rounds between elastic commits")


class RiSGDState:
    """Redundancy, the local-SGD state it runs on, and the elastic membership history.

    Args:
        local_sgd: τ (``local_steps``), the compressor, x̂, this rank's memory, step and bits
            of the local SGD with (compressed) model averaging.
        redundancy: q, chunks of the data set per worker.
        num_chunks: p, chunks of the data set; None takes the number of workers at the start.
        non_iid: split the data set into label-sorted chunks.
        commit_every: sync rounds between two elastic commits.
    """

    def __init__(self, local_sgd: QsparseState, redundancy: int = 1, num_chunks: Optional[int] = None,
                 non_iid: bool = False, commit_every: int = 1):
        check_hyperparameters(redundancy, num_chunks, non_iid, commit_every)
        # --- hyperparameters: the data placement -----------------------------------------
        self.redundancy = redundancy
        self.num_chunks = num_chunks
        self.non_iid = non_iid
        # --- hyperparameters: fault tolerance ----------------------------------------------
        self.commit_every = commit_every
        # --- τ, x̂, memory, step and bits of the local SGD ------------------------------------
        self.local_sgd = local_sgd
        # --- (step, live slots) at the start and after every elastic reset -------------------
        self.memberships: List[Tuple[int, List[int]]] = []

    @property
    def step(self) -> int:
        """Steps taken so far (the local SGD's counter)."""
        return self.local_sgd.step

    @step.setter
    def step(self, value: int) -> None:
        self.local_sgd.step = value

    @property
    def bits(self):
        """This rank's ``BitCounter`` (the local SGD's: RI-SGD's rounds are its rounds)."""
        return self.local_sgd.bits

    def rounds_done(self, step: Optional[int] = None) -> int:
        """Communication rounds in steps [0, step): every warm-up step, then one per τ steps."""
        s = self.local_sgd
        step = s.step if step is None else step
        if step <= s.warmup_steps:
            return step
        return s.warmup_steps + step // s.local_steps - s.warmup_steps // s.local_steps

    def at_round_end(self) -> bool:
        """True when the last step communicated, so every replica holds the same model."""
        s = self.local_sgd
        last = s.step - 1
        return last >= 0 and (s.averages_gradients(last) or s.syncs_model_after(last))

    def commit_due(self) -> bool:
        """True at the end of every ``commit_every``-th round."""
        return self.at_round_end() and self.rounds_done() % self.commit_every == 0

    def state_dict(self) -> dict:
        return {"redundancy": self.redundancy, "num_chunks": self.num_chunks, "non_iid": self.non_iid,
                "commit_every": self.commit_every, "memberships": [(s, list(m)) for s, m in self.memberships],
                "local_sgd": self.local_sgd.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        for name in ("redundancy", "non_iid"):
            if state[name] != getattr(self, name):
                raise ValueError(f"checkpoint was written with {name}={state[name]!r}, "
                                 f"this optimizer uses {getattr(self, name)!r}")
        self.memberships = [(s, list(m)) for s, m in state["memberships"]]
        self.local_sgd.load_state_dict(state["local_sgd"])
