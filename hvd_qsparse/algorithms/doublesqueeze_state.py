"""All hyperparameters and state of DoubleSqueeze, in one object (as torch's PowerSGDState)."""
from typing import List, Optional

from hvd_qsparse.comm import BitCounter, Message, ServerRound
from hvd_qsparse.comm import shard_sizes as plan_shards
from hvd_qsparse.compression import Compressor
from hvd_qsparse.error_feedback import ErrorFeedback
from hvd_qsparse.validation import check_bool, check_choice, check_int

#: ``--server-layout``: the registered two-pass exchange that carries both passes
SERVER_LAYOUTS = ("sharded", "ps")
#: ``--shard-scope``: what is cut into R shards, the flat gradient or every tensor
SHARD_SCOPES = ("flat", "tensor")


class DoubleSqueezeState:
    """Hyperparameters, both memories and counters.

    Args:
        compressor: the operator Q of both passes.
        ranks: R, the number of shards (one per rank).
        numel: d, the entries of the flat gradient.
        server_layout: ``sharded`` (rank j serves shard j) or ``ps`` (rank 0 serves all).
        server_memory: keep δ̄ (False compresses the servers' means without memory).
        seed: base of the per-(step, shard) seeds (rand-k indices, QSGD rounding).
        server_compressor: the server pass's Q (None: ``compressor``).
        shard_scope: ``flat`` or ``tensor`` (``SHARD_SCOPES``).
    """

    def __init__(self, compressor: Compressor, ranks: int, numel: int, server_layout: str = "sharded",
                 server_memory: bool = True, seed: int = 0, server_compressor: Optional[Compressor] = None,
                 shard_scope: str = "flat"):
        # --- hyperparameters --------------------------------------------------------------
        self.compressor = compressor
        self.server_compressor = server_compressor or compressor
        self.shard_scope = check_choice("shard_scope", shard_scope, SHARD_SCOPES)
        self.server_layout = check_choice("server_layout", server_layout, SERVER_LAYOUTS)
        check_bool("server_memory", server_memory)
        self.seed = check_int("seed", seed, 0, "base random seed")
        # --- the shard plan: R contiguous near-equal shards of the flat gradient -------------
        self.ranks = check_int("ranks", ranks, 1, "the number of shards, one per rank")
        self.shard_sizes: List[int] = plan_shards(numel, ranks)
        # --- memories: δ_i of this worker (every shard), δ̄ of the shards this rank serves ---
        self.worker_memory = ErrorFeedback()
        self.server_memory: Optional[ErrorFeedback] = ErrorFeedback() if server_memory else None
        # --- counters -------------------------------------------------------------------------
        self.step = 0
        self.bits = BitCounter()  # sent and received (both passes), per step
        # --- the last step's exchange, for diagnostics (not checkpointed) ----------------------
        self.last_messages: List[Message] = []
        self.last_round: Optional[ServerRound] = None

    @property
    def bits_received(self) -> int:
        """Bits that arrived from other ranks, both passes, all steps."""
        return self.bits.total_received

    @bits_received.setter
    def bits_received(self, value: int) -> None:
        self.bits.total_received = value

    def state_dict(self) -> dict:
        return {"step": self.step, "seed": self.seed, "compressor": self.compressor.name,
                "server_layout": self.server_layout, "ranks": self.ranks,
                "server_params": self.server_compressor.params(), "shard_scope": self.shard_scope,
                "worker_memory": self.worker_memory.state_dict(),
                "server_memory": None if self.server_memory is None else self.server_memory.state_dict(),
                "bits": self.bits.state_dict(), "bits_received": self.bits_received}

    def load_state_dict(self, state: dict) -> None:
        """Restore a checkpoint of the same configuration (compressor, layout, ranks, memory)."""
        mine = {"compressor": self.compressor.name, "server_layout": self.server_layout, "ranks": self.ranks,
                "server_memory": self.server_memory is not None, "server_params": self.server_compressor.params(),
                "shard_scope": self.shard_scope}
        # checkpoints from before server_ratio and shard_scope: the workers' Q, flat shards
        theirs = {"server_params": self.compressor.params(), "shard_scope": "flat", **state,
                  "server_memory": state["server_memory"] is not None}
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
