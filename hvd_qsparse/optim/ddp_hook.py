r"""A DDP communication hook: error-compensated compression of each gradient bucket.

For scripts built on ``torch.nn.parallel.DistributedDataParallel``: one line,
``model.register_comm_hook(state, hvd_qsparse.ddp_hook)``, gives them Qsparse-local-SGD with
H = 1 (Basu et al., NeurIPS 2019) on DDP's own buckets. For bucket b at step t on rank r, with
memory :math:`m_{b,r}` and compressor C,

.. math::
    p_{b,r} = C(g_{b,r} + m_{b,r}),\quad m_{b,r} \leftarrow g_{b,r} + m_{b,r} - D(p_{b,r}),\quad
    \hat g_b = \frac1R \sum_r D(p_{b,r}),

and DDP's optimizer steps on :math:`\hat g_b` (docs/algorithms.md §1 states the rule once).
The first ``start_iter`` steps are dense fp32 allreduces, as PowerSGD's hook does, because DDP
rebuilds its buckets after the first iteration. A DDP built afresh (a resumed job) lays its
first iteration out in another order again, so the memories are kept per parameter when the
state knows the names (``named_parameters=model.named_parameters()``) and assembled into each
bucket's order as it comes: then a checkpoint resumes exactly; without names they are kept per
bucket and a resumed state is refused.

``CompressionHookState`` holds state and hyperparameters in one object, as ``PowerSGDState``
does; its ``state_dict`` (memories, step, bits) goes into a checkpoint beside the model's and
the optimizer's, and ``load_state_dict`` resumes exactly. Where it differs from
``hvd_qsparse.DistributedOptimizer(local_steps=1)``: DDP decides the buckets (their order and
size, ``bucket_cap_mb``); each bucket is exchanged inside its hook, so the transfer overlaps the
rest of the backward pass only as far as DDP runs hooks early; H > 1, DoubleSqueeze's server
pass and GradScaler agreement are the wrapped optimizer's alone.
"""
from typing import List, Optional, Tuple, Union

import torch

from hvd_qsparse.backend import TorchCommunicator
from hvd_qsparse.comm import BitCounter, make_exchange
from hvd_qsparse.compression import Compressor, create
from hvd_qsparse.error_feedback import ErrorFeedback
from hvd_qsparse.optim.agreement import LocalReport, Verdict
from hvd_qsparse.optim.pipeline import StepPipeline
from hvd_qsparse.optim.timing import StepTimer
from hvd_qsparse.validation import check_int

#: exchanges that take one message per bucket and need no server (DoubleSqueeze's do)
HOOK_EXCHANGES = ("auto", "allgather", "allreduce", "dense", "sparse-or-dense")


class CompressionHookState:
    """State and hyperparameters of ``ddp_hook``.

    Args:
        process_group: the ranks (DDP's ``process_group``; None: the default group).
        compressor: a name (``python -m hvd_qsparse.cli list``) or a ``Compressor``.
        ratio, levels: the compressor's parameters when given by name.
        exchange: one of ``HOOK_EXCHANGES``.
        start_iter: dense fp32 steps before compression starts (at least 2, see the module).
        seed: base of the per-(step, bucket) seeds every rank shares.
        named_parameters: the DDP model's ``named_parameters()``; memories are then kept per
            parameter (needed for exact resume, see the module).
    """

    def __init__(self, process_group=None, compressor: Union[str, Compressor] = "topk+sign",
                 ratio: Optional[float] = None, levels: Optional[int] = None, exchange: str = "auto",
                 start_iter: int = 2, seed: int = 0, named_parameters=None):
        if exchange not in HOOK_EXCHANGES:
            raise ValueError(f"exchange={exchange!r} is not available to the DDP hook; accepted: "
                             f"{', '.join(HOOK_EXCHANGES)} (a server pass needs "
                             "hvd_qsparse.DistributedOptimizer(algorithm='doublesqueeze'))")
        self.compressor = compressor if isinstance(compressor, Compressor) else create(compressor, ratio=ratio,
                                                                                         levels=levels)
        self.exchange_name = exchange
        self.start_iter = check_int("start_iter", start_iter, 2, "dense steps before compression (DDP rebuilds "
                                    "its buckets after the first one)")
        self.seed = int(seed)
        self.process_group = process_group
        self.iteration = 0
        self.memory = ErrorFeedback()
        self.bits = BitCounter()
        #: id(parameter) -> its name without DDP's ``module.`` prefix (empty: memories per bucket)
        self.names = {id(p): n.removeprefix("module.") for n, p in (named_parameters or [])}
        self._connect()

    def _connect(self) -> None:
        self.comm = TorchCommunicator(self.process_group)
        self.exchange = make_exchange(self.exchange_name, self.compressor, comm=self.comm)
        self.dense_exchange = make_exchange("allreduce", create("none"), comm=self.comm)
        self.pipeline = StepPipeline(self.comm, StepTimer(), lambda: self.bits)

    # --- checkpoints (the communicator and exchanges are rebuilt, never pickled) ----------------
    def spec(self) -> dict:
        """What a checkpoint must have been made with."""
        return {"compressor": self.compressor.kernel_spec(0)[0], "params": dict(self.compressor.params()),
                "exchange": self.exchange_name,
                "start_iter": self.start_iter, "seed": self.seed, "per_parameter": bool(self.names)}

    def state_dict(self) -> dict:
        return {"spec": self.spec(), "iteration": self.iteration, "memory": self.memory.state_dict(),
                "bits": self.bits.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()``'s output.

        Raises:
            ValueError: the checkpoint was made with another compressor, exchange, start or seed.
        """
        for key, value in self.spec().items():
            if state["spec"][key] != value:
                raise ValueError(f"DDP hook checkpoint made with {key}={state['spec'][key]!r}, this state has "
                                 f"{key}={value!r}")
        if not self.names and state["iteration"] > self.start_iter:
            raise ValueError("a DDP hook state without named_parameters cannot resume: a new DDP lays its buckets "
                             "out anew; build CompressionHookState(named_parameters=model.named_parameters(), ...)")
        self.iteration = int(state["iteration"])
        self.memory.load_state_dict(state["memory"])
        self.bits = BitCounter()
        self.bits.load_state_dict(state["bits"])

    # --- memories per parameter ----------------------------------------------------------
    def bucket_names(self, bucket) -> Tuple[List[str], List[int]]:
        """The names and sizes of the bucket's parameters, in its order (empty without names).

        Raises:
            ValueError: a parameter the state was not given, or a bucket with padding.
        """
        if not self.names:
            return [], []
        params = bucket.parameters()
        missing = [tuple(p.shape) for p in params if id(p) not in self.names]
        if missing:
            raise ValueError(f"DDP bucket {bucket.index()} holds parameters of shapes {missing} that are not in the "
                             "named_parameters given to CompressionHookState")
        if sum(p.numel() for p in params) != bucket.buffer().numel():
            raise ValueError(f"DDP bucket {bucket.index()} is not its parameters back to back")
        return [self.names[id(p)] for p in params], [p.numel() for p in params]

    def gather_memory(self, key: str, names: List[str], sizes: List[int], like: torch.Tensor) -> None:
        """Assemble the parameters' memories into bucket ``key``'s (zeros where there is none)."""
        if names:
            pieces = [self.memory.memory.pop(n, None) for n in names]
            self.memory.memory[key] = torch.cat([torch.zeros(s, dtype=torch.float32, device=like.device) if m is None
                                                 else m.reshape(-1) for m, s in zip(pieces, sizes)])

    def scatter_memory(self, key: str, names: List[str], sizes: List[int]) -> None:
        """Cut bucket ``key``'s memory back into its parameters'."""
        if names and key in self.memory.memory:
            joined = self.memory.memory.pop(key)
            for name, piece in zip(names, joined.split(sizes)):
                self.memory.memory[name] = piece.clone()

    def snapshot(self, key: str, names: List[str]) -> dict:
        """Copies of the memories bucket ``key`` will change (None: none yet)."""
        held = self.memory.memory
        return {n: None if held.get(n) is None else held[n].clone() for n in (names or [key])}

    def restore(self, snapshot: dict) -> None:
        """Put ``snapshot``'s memories back (a step every rank refused)."""
        for name, value in snapshot.items():
            if value is None:
                self.memory.memory.pop(name, None)
            else:
                self.memory.memory[name] = value

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for name in ("comm", "exchange", "dense_exchange", "pipeline", "process_group", "names"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.process_group, self.names = None, {}
        self._connect()


def ddp_hook(state: CompressionHookState, bucket) -> torch.futures.Future[torch.Tensor]:
    """The communication hook: ``model.register_comm_hook(state, ddp_hook)``.

    Returns:
        A future holding the bucket's averaged (decoded) gradient.

    Raises:
        NonFiniteGradientError: on every rank, when a rank's compensated bucket held NaN or Inf
            (its memory is left as it was); a dense warm-up step carries NaN as DDP does.
    """
    grad, step = bucket.buffer(), state.iteration
    if bucket.is_last():
        state.iteration += 1
    key = f"bucket{bucket.index()}"
    report = LocalReport()
    dense = step < state.start_iter
    exchange = state.dense_exchange if dense else state.exchange
    names, sizes = ([], []) if dense else state.bucket_names(bucket)
    before = None if dense else state.snapshot(key, names)
    state.gather_memory(key, names, sizes, grad)
    try:
        batch = state.pipeline.compress([(key, grad)], exchange.compressor, None if dense else state.memory,
                                        seed=state.seed, step=step, report=report)
    finally:
        state.scatter_memory(key, names, sizes)
    round_ = state.pipeline.run(exchange, batch, f"ddp.{key}.{step}", step, flag=report.code)
    if not dense:
        verdict = Verdict.from_flags([round_.pending.flags])
        if verdict.non_finite:
            state.restore(before)
            raise verdict.error([key], "the compensated gradient bucket", kept="memories untouched")
    future = torch.futures.Future()
    future.set_result(round_.totals[0].reshape(grad.shape).div_(state.comm.size).to(grad.dtype))
    return future
