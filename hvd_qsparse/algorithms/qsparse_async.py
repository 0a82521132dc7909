r"""Asynchronous Qsparse-local-SGD (Basu, Data, Karakus, Diggavi, NeurIPS 2019, section 4).

Each rank r has its own synchronization schedule I^(r) (gaps ≤ H, not aligned across ranks).
Every step the wrapped optimizer takes a local step x^(r)_{t+½}; when t + 1 ∈ I^(r), with
x̂^(r) the global model this rank fetched last,

.. math::
    u = m^{(r)} + \hat x^{(r)} - x^{(r)}_{t+\frac12},\quad
    \tilde g^{(r)} = \mathrm{QComp}_k(u),\quad m^{(r)} \leftarrow u - \tilde g^{(r)},\quad
    \hat x \leftarrow \hat x - \tfrac1R \tilde g^{(r)}\ \text{(at once, waiting for no one)},\quad
    x^{(r)}_{t+1} = \hat x^{(r)} \leftarrow \hat x.

The global x̂ is one fp32 vector in an MPI window on the host rank (``comm.Window``). A push
is ``Accumulate(op=SUM)`` of −g̃^(r)/R through an indexed datatype (only the k touched entries
move; a dense quantizer pushes the whole vector), followed in the same shared-lock epoch by a
fetch of the whole x̂ (``Get_accumulate(NO_OP)``, so it sees this push and never a torn entry).
There is no master loop and no barrier while training: the host trains like everyone else,
and a progress thread on it (``progress="thread"``) makes pushes complete while it computes.

Start: rank 0's parameters become x̂ (after ``broadcast_state``, every rank's); on resume the
host writes back the window it saved. End: ``finish()`` (called by ``load_synchronized_model``)
pushes each rank's last local steps, waits for every rank, gives every rank the final x̂ and
frees the window: the only barriers are there and at the start.

Bits: what crosses the wire is fp32 values plus an int32 displacement per touched entry (MPI
sums native types only, so the quantizer's packing cannot survive a SUM accumulate); those are
the bits counted as sent, next to the compressor's analytic figure. The fetch of x̂ (32·d bits
per push) is counted as received, and in ``fetched_bits`` with the final fetch of ``finish``.
"""
import atexit
from typing import Optional

import torch

from hvd_qsparse.algorithms.qsparse_async_state import PROGRESS, QsparseAsyncState
from hvd_qsparse.algorithms.registry import register_algorithm
from hvd_qsparse.comm import Finished, FlatLayout, ProgressThread, Window
from hvd_qsparse.comm.window import load_mpi
from hvd_qsparse.compression import Compressor, NoneCompressor, create
from hvd_qsparse.optim import AmpInputs, LocalReport, Round, WrappedOptimizer
from hvd_qsparse.optim.grads import unscale_grads_
from hvd_qsparse.optim.state_format import called_from_broadcast_optimizer_state

STEPS_COUNTER = 0  # window counter: local steps pushed by all ranks


@register_algorithm("qsparse-async")
class QsparseAsyncLocalSGD(WrappedOptimizer):
    """The wrapped optimizer running asynchronous Qsparse-local-SGD over a one-sided window.

    Constructing it is collective (it allocates the window); so are ``broadcast_state`` and
    ``finish``. Needs Horovod running on MPI (``mpirun`` or ``horovodrun``, not ``--gloo``).

    Args:
        optimizer: any torch optimizer; it takes the local steps.
        named_parameters: ``model.named_parameters()``; same names and shapes on every rank.
        compressor: a registered name or a ``Compressor``; ratio, levels: its parameters.
        local_steps: H, the largest gap between two pushes of one rank.
        warmup_steps: first steps pushed dense every step. seed: base seed.
        host_rank: the rank holding x̂. progress: ``thread`` or ``none`` (see ``comm.progress``).
        step_budget: total steps of all ranks after which ``should_stop`` becomes True.

    Raises:
        ValueError: a bad argument, or models whose layouts differ between ranks (every rank
            raises, naming the first differing parameter).
        comm.OneSidedUnavailableError: MPI cannot create the window (every rank raises).
    """

    bookkeeping_options = ("seed", "progress", "host_rank")  # where x̂ lives and who progresses it

    def __init__(self, optimizer, named_parameters=None, compressor="topk", ratio: Optional[float] = None,
                 levels: Optional[int] = None, local_steps: int = 4, warmup_steps: int = 0, seed: int = 0,
                 host_rank: int = 0, progress: str = "thread", step_budget: Optional[int] = None, options=None):
        super().__init__(optimizer, named_parameters, options)
        self.options.refuse("qsparse-async", process_set="its window spans MPI's world; run it on all ranks",
                            groups="it has no backward-hook exchanges to group",
                            gradient_predivide_factor="its pushes are one-sided accumulates, not allreduces")
        if not isinstance(compressor, Compressor):
            compressor = create(compressor, ratio=ratio, levels=levels)
        self._hyperparameters = (compressor, self.comm.rank, local_steps, warmup_steps, seed, host_rank, progress,
                                 step_budget)
        self.algorithm_state = self._new_algorithm_state()
        _check_horovod_on_mpi(self.comm)
        self.layout = FlatLayout.of(self.named_params)
        self.window = Window(self.layout, host_rank, counters=1)
        self.dense = NoneCompressor()
        # x̂^(r) lives beside the parameters it is compared with and loaded into; the window
        # stages it through host memory when that is a GPU (``comm.window``).
        self.x_hat_flat = torch.zeros(self.layout.numel, device=_device_of(self.named_params))
        self.progress: Optional[ProgressThread] = None
        self.started = self.finished = self.resumed = False

    def _new_algorithm_state(self) -> QsparseAsyncState:
        return QsparseAsyncState(*self._hyperparameters)

    def _averages_gradients(self) -> bool:
        return False

    def _check_can_add_params(self) -> None:
        raise ValueError("qsparse-async: add_param_group is not supported: the window holding x̂ is laid out "
                         "once, for the parameters given at construction")

    def _reset_algorithm_state(self) -> None:
        if self.started:
            raise RuntimeError("qsparse-async: load_state_dict must come before the first step")
        super()._reset_algorithm_state()

    # --- start ------------------------------------------------------------------------------
    def broadcast_state(self, root_rank: int = 0) -> None:
        """Broadcast parameters and optimizer state, then put the model in the window."""
        super().broadcast_state(root_rank)
        self.start()

    def start(self) -> None:
        """Fill the window (collective, once): the host's saved window after ``load_state_dict``,
        rank 0's parameters otherwise; then, on a fresh start, every rank fetches x̂ and trains
        from it. Called by ``broadcast_state`` or, failing that, by the first ``step``."""
        if self.started:
            return
        window, state = self.window, self.algorithm_state
        resuming = window.comm.bcast(state.window_snapshot is not None, root=state.host_rank)
        writer = state.host_rank if resuming else 0
        if window.rank == writer:
            with window.lock(exclusive=True):
                self._write_window()
        window.barrier()
        if not self.resumed:
            with window.lock():
                window.fetch(self.x_hat_flat)
            self._bind_x_hat()
            self._load_x_hat_into_params()
        window.barrier()  # every rank holds x̂_0 before anyone pushes
        if window.rank == state.host_rank and state.progress == "thread":
            self.progress = ProgressThread(window.comm).start()
            atexit.register(self.progress.stop)  # a daemon thread must not probe a finalized MPI
        self.started = True

    def _write_window(self) -> None:
        snapshot = self.algorithm_state.window_snapshot
        if snapshot is None:
            self.window.put(self.layout.flatten(self.named_params))
            self.window.set_counters([0])
            return
        self.window.put(snapshot["x_hat"])
        self.window.set_counters(snapshot["counters"].tolist())

    def _bind_x_hat(self) -> None:
        self.algorithm_state.x_hat = self.layout.views(self.x_hat_flat)

    @torch.no_grad()
    def _load_x_hat_into_params(self) -> None:
        for name, param in self.named_params:
            param.copy_(self.algorithm_state.x_hat[name])

    # --- the step ---------------------------------------------------------------------------
    def step(self, closure=None):
        """A local step; at this rank's sync steps, push the compressed change and fetch x̂.

        No rank waits for another here, so a GradScaler overflow skips the step on this rank
        only (the others' schedules are their own)."""
        if self.finished:
            raise RuntimeError("qsparse-async: finish() has freed the window; build a new optimizer to train on")
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if called_from_broadcast_optimizer_state():
            self.optimizer.step()  # only creates the inner state (see optim.state_format)
            return loss
        amp = AmpInputs.of(self)
        self.start()
        if amp.overflow:
            return loss
        unscale_grads_(self.named_params, amp.inv_scale)
        self.optimizer.step()
        self.algorithm_state.step += 1
        if self.algorithm_state.syncs_now():
            self._push_and_fetch()
        return loss

    @property
    def should_stop(self) -> bool:
        """True once all ranks together have pushed ``step_budget`` steps (as of our last push)."""
        return self.algorithm_state.should_stop

    def _push_and_fetch(self) -> None:
        """The window epoch is this algorithm's exchange: no rank waits for another, so it is not
        a collective ``comm.Exchange``; compression and the bits go through the step pipeline."""
        state, window = self.algorithm_state, self.window
        step = state.step - 1
        indices, values, batch = self._compress_update(step)
        covered = state.pushed()
        with self.timer.phase("communicate"), window.lock():
            sent = window.accumulate(values, indices)
            before = window.add_counter(STEPS_COUNTER, covered)
            received = window.fetch(self.x_hat_flat)
        self._load_x_hat_into_params()
        state.global_steps = int(before[0]) + covered
        state.fetched_bits += 8 * received
        self.pipeline.record(Round(Finished(sent_bytes=sent, received_bytes=received), batch, step))

    def _compress_update(self, step: int):
        """Window offsets (None when dense), the values −g̃/R and the compressed batch of g̃.

        Raises:
            ValueError: a non-finite model change (this rank's memories are left as they were).
        """
        state = self.algorithm_state
        compressor = self.dense if state.is_warmup(step) else state.compressor
        changes = [(name, state.x_hat[name] - param.detach().float()) for name, param in self.named_params]
        report, snapshot = LocalReport(), state.error_feedback.snapshot()
        batch = self.pipeline.compress(changes, compressor, state.error_feedback, seed=state.seed, step=step,
                                       report=report)
        if report.bad_tensor is not None:
            state.error_feedback.restore(snapshot)
            raise ValueError(f"qsparse-async: the model change of {changes[report.bad_tensor][0]!r} holds NaN or "
                             "Inf; nothing was pushed")
        touched = [s.offset(self.layout.offset(name)) for (name, _), s in zip(changes, batch.selections)]
        values = torch.cat([s.values.reshape(-1).float() for s in touched])
        values.div_(-(self.comm.size if self.options.op == "average" else 1))
        indices = None if touched[0].is_dense else torch.cat([s.indices for s in touched]).to(torch.int32)
        return indices, values, batch

    # --- the end ------------------------------------------------------------------------------
    def finish(self) -> None:
        """Push the local steps not pushed yet, wait for every rank, load the final x̂ on every
        rank and free the window (collective; ranks may arrive at different times)."""
        if self.finished:
            return
        self.start()
        if self.algorithm_state.step > self.algorithm_state.last_push_step:
            self._push_and_fetch()
        self.window.barrier()
        with self.window.lock():
            received = self.window.fetch(self.x_hat_flat)
            total = self.window.add_counter(STEPS_COUNTER, 0)
        self.algorithm_state.fetched_bits += 8 * received
        self.algorithm_state.global_steps = int(total[0])
        self._load_x_hat_into_params()
        self.buffers.average(self.algorithm_state.step, self.bits)  # once, here: mid-run it would lock-step ranks
        self.window.barrier()  # nobody frees the window while a rank still reads it
        if self.progress is not None:
            self.progress.stop()
            atexit.unregister(self.progress.stop)
        self.window.free()
        self.finished = True

    def load_synchronized_model(self) -> None:
        """End training (``finish``) and load the final x̂, identical on every rank."""
        self.finish()

    # --- state --------------------------------------------------------------------------------
    @classmethod
    def add_arguments(cls, group) -> None:
        group.add_argument("--window-host-rank", type=int, default=0, help="rank whose memory holds x̂ (the window)")
        group.add_argument("--mpi-progress", default="thread", choices=PROGRESS,
                           help="thread: the host runs an MPI progress thread, so pushes complete while it computes")

    @classmethod
    def options_from_args(cls, args) -> dict:
        if args.window_host_rank < 0:
            raise ValueError(f"--window-host-rank must be an integer >= 0 (a rank), got {args.window_host_rank}")
        return {"compressor": args.compressor, "ratio": args.ratio, "levels": args.levels,
                "local_steps": args.local_steps, "warmup_steps": args.warmup_steps, "seed": args.seed,
                "host_rank": args.window_host_rank, "progress": args.mpi_progress}

    def algorithm_state_dict(self) -> dict:
        """This rank's state; on the host also the window (x̂ and counters) as it is now."""
        state = self.algorithm_state
        if self.comm.rank == state.host_rank and self.started:
            state.window_snapshot = self._window_snapshot()
        return state.state_dict()

    def _window_snapshot(self) -> dict:
        """The global x̂ and counters now (after ``finish``: the final x̂ and step count)."""
        x_hat, counters = self.x_hat_flat.clone(), [self.algorithm_state.global_steps]
        if not self.finished:
            with self.window.lock():
                self.window.fetch(x_hat)
                counters = self.window.add_counter(STEPS_COUNTER, 0)
        return {"layout": self.layout.signature(), "x_hat": x_hat, "counters": torch.tensor(list(counters))}

    def load_algorithm_state_dict(self, state: dict) -> None:
        if self.started:
            raise RuntimeError("qsparse-async: load_state_dict must come before the first step")
        x_hat = state["x_hat"]
        self.layout.check_matches([(n, tuple(t.shape)) for n, t in x_hat.items()], here="the model",
                                  there="the checkpoint")
        if state["window"] is not None:
            self.layout.check_matches(state["window"]["layout"], here="the model", there="the checkpoint's window")
        self.algorithm_state.load_state_dict(state)
        self.x_hat_flat = self.layout.flatten(x_hat.items()).to(self.x_hat_flat.device)
        self._bind_x_hat()
        self.resumed = True


def _device_of(named_params) -> torch.device:
    """The device of the first parameter (the CPU when there is none)."""
    return named_params[0][1].device if named_params else torch.device("cpu")


def _check_horovod_on_mpi(comm) -> None:
    """The window lives on MPI's world: Horovod must run on the same MPI world."""
    if not comm.mpi_enabled():  # Horovod on Gloo, or the torch.distributed backend
        raise ValueError(f"algorithm 'qsparse-async' needs Horovod running on MPI (mpirun, or horovodrun "
                         f"without --gloo) for its one-sided window; this run has {comm!r}")
    world = load_mpi().COMM_WORLD.Get_size()
    if world != comm.size:
        raise ValueError(f"algorithm 'qsparse-async' needs Horovod running on MPI (mpirun, or horovodrun "
                         f"without --gloo): Horovod has {comm.size} ranks, MPI's world {world}")
