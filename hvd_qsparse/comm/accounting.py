"""Exact bit accounting: what each rank really handed to the network, step by step.

Convention (the one papers use for "bits per worker"): a rank's bits sent for a step are the
bytes of the buffers it contributes to the step's collectives (payloads, framing padding and
any size headers), times 8. The dense baseline is the fp32 allreduce of the same tensors,
32·d bits per communication round.

Bits received are the bytes that reach this rank from the other ranks' buffers: the other
ranks' segments of an allgather (the fan-out, (R − 1) times a rank's payload), the slices the
others address to it in an alltoall, a broadcast's buffer at every rank but the root. What
arrives in an allreduce depends on its algorithm; it is counted as a ring moves it (Horovod's
NCCL and MPI rings, and Rabenseifner's reduce-scatter + allgather, move the same):
2(R − 1)/R of the buffer (``ring_share``). The received baseline is a ring allreduce of fp32,
2(R − 1)/R · 32·d bits per round: it hardly changes with R, where an allgather's fan-out grows
as R − 1.
"""
from dataclasses import dataclass, field
from typing import List


def ring_share(nbytes: int, ranks: int) -> int:
    """Bytes that reach one rank in a ring allreduce of ``nbytes`` over ``ranks`` ranks: R − 1
    chunks of about nbytes/R in the reduce-scatter and as many in the allgather."""
    return 2 * (ranks - 1) * int(nbytes) // ranks if ranks > 1 else 0


@dataclass
class StepBits:
    """One communicating step of one rank."""

    step: int
    sent: int       # bits of the real buffers
    analytic: int   # docs/algorithms.md's figure for the same payloads
    dense: int      # 32·d: what an uncompressed fp32 allreduce would have sent
    control: int = 0  # bits of the small agreement flags (``optim.agreement``), apart from payloads
    received: int = 0  # bits the collectives delivered to this rank from the other ranks' buffers


@dataclass
class BitCounter:
    """Per-step and running totals of the bits this rank sent and received."""

    history: List[StepBits] = field(default_factory=list)
    total_sent: int = 0
    total_analytic: int = 0
    total_control: int = 0
    total_received: int = 0

    def record(self, step: int, sent: int, analytic: int, dense: int, received: int = 0) -> None:
        """Add a communicating step (several calls for one step are merged)."""
        if self.history and self.history[-1].step == step:
            last = self.history[-1]
            last.sent += sent
            last.analytic += analytic
            last.dense += dense
            last.received += received
        else:
            self.history.append(StepBits(step, sent, analytic, dense, received=received))
        self.total_sent += sent
        self.total_analytic += analytic
        self.total_received += received

    def record_control(self, step: int, bits: int) -> None:
        """Add the agreement flags' bits of ``step`` (kept apart from the payloads' ``sent``)."""
        if not bits:
            return
        if self.history and self.history[-1].step == step:
            self.history[-1].control += bits
        else:
            self.history.append(StepBits(step, 0, 0, 0, bits))
        self.total_control += bits

    def bits_at(self, step: int) -> int:
        """Bits sent at ``step`` (0 for a step without communication)."""
        return sum(s.sent for s in self.history if s.step == step)

    def state_dict(self) -> dict:
        return {"history": [vars(s).copy() for s in self.history], "total_sent": self.total_sent,
                "total_analytic": self.total_analytic, "total_control": self.total_control,
                "total_received": self.total_received}

    def load_state_dict(self, state: dict) -> None:
        self.history = [StepBits(**s) for s in state["history"]]
        self.total_sent = state["total_sent"]
        self.total_analytic = state["total_analytic"]
        self.total_control = state.get("total_control", 0)
        self.total_received = state.get("total_received", 0)
