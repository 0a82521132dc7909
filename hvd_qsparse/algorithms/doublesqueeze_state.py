"""All hyperparameters and state of DoubleSqueeze, in one object (as torch's PowerSGDState)."""
from typing import List, Optional

from hvd_qsparse.algorithms.qsparse_state import check_int
from hvd_qsparse.comm import BitCounter, Message, ParameterServerExchange, ServerRound, ShardedServerExchange
from hvd_qsparse.comm import shard_sizes as plan_shards
from hvd_qsparse.compression import Compressor
from hvd_qsparse.error_feedback import ErrorFeedback

#: ``--server-layout`` → the exchange that carries both passes
SERVER_LAYOUTS = {"sharded": ShardedServerExchange, "ps": ParameterServerExchange}


class DoubleSqueezeState:
    """Hyperparameters, both memories and counters.

    Args:
        compressor: the operator Q of both passes.
        ranks: R, the number of shards (one per rank).
        numel: d, the entries of the flat gradient.
        server_layout: ``sharded`` (rank j serves shard j) or ``ps`` (rank 0 serves all).
        server_memory: keep δ̄ (False compresses the servers' means without memory).
        seed: base of the per-(step, shard) seeds (rand-k indices, QSGD rounding).
    """

    def __init__(self, compressor: Compressor, ranks: int, numel: int, server_layout: str = "sharded",
                 server_memory: bool = True, seed: int = 0):
        # --- hyperparameters --------------------------------------------------------------
        self.compressor = compressor
        if server_layout not in SERVER_LAYOUTS:
            raise ValueError(f"server_layout must be one of {', '.join(SERVER_LAYOUTS)}, got {server_layout!r}")
        self.server_layout = server_layout
        if not isinstance(server_memory, bool):
            raise ValueError(f"server_memory must be True or False, got {server_memory!r}")
        self.seed = check_int("seed", seed, 0, "base random seed")
        # --- the shard plan: R contiguous near-equal shards of the flat gradient -------------
        self.ranks = check_int("ranks", ranks, 1, "the number of shards, one per rank")
        self.shard_sizes: List[int] = plan_shards(numel, ranks)
        # --- memories: δ_i of this worker (every shard), δ̄ of the shards this rank serves ---
        self.worker_memory = ErrorFeedback()
        self.server_memory: Optional[ErrorFeedback] = ErrorFeedback() if server_memory else None
        # --- counters -------------------------------------------------------------------------
        self.step = 0
        self.bits = BitCounter()
        self.bits_received = 0  # bits that arrived from other ranks, both passes, all steps
        # --- the last step's exchange, for diagnostics (not checkpointed) ----------------------
        self.last_messages: List[Message] = []
        self.last_round: Optional[ServerRound] = None

    def make_exchange(self, comm=None):
        """The exchange of ``server_layout`` over ``comm``, sharing this state's server memory."""
        return SERVER_LAYOUTS[self.server_layout](self.compressor, self.server_memory, comm)

    def state_dict(self) -> dict:
        return {"step": self.step, "seed": self.seed, "compressor": self.compressor.name,
                "server_layout": self.server_layout, "ranks": self.ranks,
                "worker_memory": self.worker_memory.state_dict(),
                "server_memory": None if self.server_memory is None else self.server_memory.state_dict(),
                "bits": self.bits.state_dict(), "bits_received": self.bits_received}

    def load_state_dict(self, state: dict) -> None:
        """Restore a checkpoint of the same configuration (compressor, layout, ranks, memory)."""
        mine = {"compressor": self.compressor.name, "server_layout": self.server_layout, "ranks": self.ranks,
                "server_memory": self.server_memory is not None}
        theirs = dict(state, server_memory=state["server_memory"] is not None)
        for key, value in mine.items():
            if theirs[key] != value:
                raise ValueError(f"checkpoint was written with {key}={theirs[key]!r}, this optimizer has "
                                 f"{key}={value!r}; resume with the same settings")
        self.step, self.seed = state["step"], state["seed"]
        self.worker_memory.load_state_dict(state["worker_memory"])
        if self.server_memory is not None:
            self.server_memory.load_state_dict(state["server_memory"])
        self.bits.load_state_dict(state["bits"])
        self.bits_received = state["bits_received"]
