r"""Synchronous Qsparse-local-SGD (Basu, Data, Karakus, Diggavi, NeurIPS 2019).

Each rank r holds its model x^(r), the last synchronized model x̂ and a memory m^(r). Every
step the wrapped optimizer takes a local step, x^(r)_{t+½}; there is no communication unless
t + 1 ∈ I_T = {t : t mod H = 0}, where

.. math::
    u = m^{(r)} + \hat x - x^{(r)}_{t+\frac12},\quad
    \tilde g^{(r)} = \mathrm{QComp}_k(u),\quad m^{(r)} \leftarrow u - \tilde g^{(r)},\quad
    \hat x \leftarrow \hat x - \tfrac1R \textstyle\sum_r \tilde g^{(r)},\quad
    x^{(r)}_{t+1} = \hat x.

The g̃^(r) travel in one fused variable-size allgather and every rank decodes all of them.

``exchange="sharded"`` (docs/sharded-exchange.md) adds a
second, compensated compression by the owner of each region, so that a rank's traffic stays
O(k) at any R: each fused bucket is cut into R regions, rank j owns region j with memory s_j
and a server operator Q_s (the workers' by default), and

.. math::
    \sigma_j = \textstyle\sum_r \tilde g^{(r)}_j,\quad v_j = Q_s(\sigma_j + s_j),\quad
    s_j \leftarrow \sigma_j + s_j - v_j,\quad \hat x_j \leftarrow \hat x_j - \tfrac1R v_j,

DoubleSqueeze's server pass (Tang et al., ICML 2019) on the sum; with the identity compressor
it is the dense average.

With H = 1 the same rule is run on gradients instead of model changes (error-compensated
compressed SGD: u = m + g, the optimizer steps with the mean of the decoded g̃): for plain SGD at
a constant learning rate the two are the same algorithm, and the gradient form lets the
exchange start from backward hooks, bucket by bucket, while backward still runs, as Horovod
does. Warm-up steps average dense gradients with one allreduce per bucket. ``op=hvd.Sum``
replaces the 1/R by 1 in either form.
"""
from typing import List, Optional

import torch

from hvd_qsparse.algorithms.model_averaging import ModelAveraging
from hvd_qsparse.algorithms.qsparse_exchange import ExchangeChoice, exchange_options
from hvd_qsparse.algorithms.qsparse_state import EXCHANGES, QsparseState
from hvd_qsparse.algorithms.registry import register_algorithm
from hvd_qsparse.comm import make_exchange
from hvd_qsparse.compression import Compressor, NoneCompressor, create, with_ratio
from hvd_qsparse.optim import (FUSIONS, OUTERS, Fusion, GradientBuckets, LocalReport, OuterOptimizer, Verdict,
                               WrappedOptimizer, outer_factory, read_grad, sparse_grads, write_grad)
from hvd_qsparse.optim.agreement import finish_agreement, start_agreement


def outer_options(args) -> dict:
    """``--outer`` and its learning rate and momentum as constructor keywords (none when ``none``)."""
    outer_factory(args.outer, args.outer_lr, args.outer_momentum)  # the flags' errors, named as flags
    if args.outer == "none":
        return {"outer_optimizer": None}
    return {"outer_optimizer": args.outer, "outer_lr": args.outer_lr, "outer_momentum": args.outer_momentum}


@register_algorithm("qsparse")
class QsparseLocalSGD(ModelAveraging, ExchangeChoice, WrappedOptimizer):
    """The wrapped optimizer running synchronous Qsparse-local-SGD.

    Args:
        optimizer: any torch optimizer; it takes the local steps.
        named_parameters: ``model.named_parameters()`` (names key memories and seeds).
        compressor: a registered name (``topk+sign`` ...) or a ``Compressor`` instance.
        ratio, levels: the compressor's parameters when given by name.
        local_steps: H. warmup_steps: dense steps first. seed: base seed.
        exchange: ``auto``, ``allgather`` or ``allreduce``.
        bucket_cap_numel: entries per backward-hook bucket (H = 1 and warm-up) and per fused
            bucket of a model-averaging round.
        fusion: ``bucket`` compresses each bucket as one vector (top-k over the bucket),
            ``tensor`` every tensor alone (``optim.fusion``).
        memory_decay: β, the error-feedback memory's decay (SparseLoCo; 1.0: none).
        sync_delay: τ, local steps a round's exchange overlaps before it is applied (Streaming
            DiLoCo; 0: applied at once). mixing: α, the local model's weight then.
        fragments: F, fragments of the model synchronizing on a staggered schedule.
        outer_optimizer: the optimizer applying the averaged change Δ̄ to x̂ as its gradient
            (DiLoCo): ``"nesterov"`` or ``"sgd"`` (torch's SGD with ``outer_lr`` and
            ``outer_momentum``), any ``params -> torch.optim.Optimizer``, or None: x̂ ← x̂ − Δ̄.
            The rules are in ``algorithms.model_averaging``.
        options: Horovod's keywords (``optim.HorovodOptions``).
    """

    def __init__(self, optimizer, named_parameters=None, compressor="topk", ratio: Optional[float] = None,
                 levels: Optional[int] = None, local_steps: int = 1, warmup_steps: int = 0, seed: int = 0,
                 exchange: str = "auto", bucket_cap_numel: int = 1 << 22, fusion: str = "bucket",
                 memory_decay: float = 1.0, sync_delay: int = 0, mixing: float = 0.0, fragments: int = 1,
                 outer_optimizer=None, outer_lr: float = 0.7, outer_momentum: float = 0.9,
                 server_ratio: Optional[float] = None, options=None):
        super().__init__(optimizer, named_parameters, options)
        if not isinstance(compressor, Compressor):
            compressor = create(compressor, ratio=ratio, levels=levels)
        server = with_ratio(compressor, server_ratio)
        if outer_optimizer is not None and not callable(outer_optimizer):
            outer_optimizer = outer_factory(outer_optimizer, outer_lr, outer_momentum)
        outer = None if outer_optimizer is None else OuterOptimizer(outer_optimizer)
        #: how ``exchange="auto"`` chose, for the summary (None when it was not asked to)
        self.exchange_choice = None
        exchange = self._resolve_exchange(exchange, compressor, server, Fusion(fusion, bucket_cap_numel))
        self._hyperparameters = (compressor, local_steps, warmup_steps, seed, exchange, fusion, memory_decay,
                                 sync_delay, mixing, fragments, outer, server)
        self.algorithm_state = self._new_algorithm_state()
        self.fusion = Fusion(self.local_sgd_state.fusion, bucket_cap_numel)
        predivide = self.options.gradient_predivide_factor
        self.exchange = make_exchange(exchange, compressor, self.comm,
                                      **exchange_options(exchange, compressor, predivide, self._serve,
                                                         self.local_sgd_state.server_compressor))
        self.dense_exchange = make_exchange("allreduce", NoneCompressor(), self.comm, predivide=predivide)
        self.bucket_cap_numel = bucket_cap_numel
        self.buckets: Optional[GradientBuckets] = None
        self._pending: List[tuple] = []
        self._hook_report: Optional[LocalReport] = None
        self._memory_snapshot = None
        self._compressed_with: Optional[float] = None
        self._make_buckets()

    def _new_algorithm_state(self) -> QsparseState:
        *settings, outer, server = self._hyperparameters
        state = QsparseState(*settings, outer=None if outer is None else OuterOptimizer(outer.factory),
                             server_compressor=server)
        state.regions = self.comm.size if state.sharded else 1
        return state

    @property
    def local_sgd_state(self) -> QsparseState:
        """The state this engine runs on (compressor, H, x̂, this rank's memory, step, bits): the
        ``algorithm_state`` itself here, a part of it for RI-SGD, which runs on this engine."""
        return self.algorithm_state

    def _make_buckets(self) -> None:
        if self.buckets is not None:
            self.buckets.remove()
            self.buckets = None
        state = self.local_sgd_state
        if self.comm.included and (state.local_steps == 1 or state.warmup_steps > 0):
            self.buckets = GradientBuckets(self.named_params, self._on_bucket_ready, self.bucket_cap_numel,
                                           self.options.backward_passes_per_step,
                                           self.options.bucket_groups(self.named_params))
        self._index = {name: i for i, (name, _) in enumerate(self.named_params)}
        self._make_plan()

    def set_backward_passes_per_step(self, passes: int) -> None:
        super().set_backward_passes_per_step(passes)
        if self.buckets is not None:
            self.buckets.passes = passes

    # --- gradient averaging (H = 1 and warm-up), driven by backward hooks -----------------
    def _averages_gradients(self) -> bool:
        return self.local_sgd_state.averages_gradients(self.local_sgd_state.step)

    def _on_bucket_ready(self, index: int) -> None:
        if not self._averages_gradients():
            return
        self._ensure_same_model()
        if self._hook_report is None:
            self._hook_report = LocalReport()
            self._memory_snapshot = self.local_sgd_state.snapshot_memories()
            self._compressed_with = self.loss_scale
        self._pending.append(self._start_bucket(index, self._hook_report))

    def _start_bucket(self, index: int, report: LocalReport) -> tuple:
        state, step = self.local_sgd_state, self.local_sgd_state.step
        bucket = self.buckets.buckets[index]
        sparse = sparse_grads(bucket)
        grads = [(n, read_grad(p, 1.0 / self.loss_scale)) for n, p in bucket]
        mine = LocalReport()  # this bucket's finding rides in its buffer
        if state.is_warmup(step):  # dense fp32, NaN/Inf carried through the sum as in Horovod
            batch = self.pipeline.compress(grads, self.dense_exchange.compressor, None, seed=state.seed, step=step,
                                           report=mine, fusion=self.fusion)
            round_ = self.pipeline.start(self.dense_exchange, batch, f"qsparse.dense.b{index}", step, flag=mine.code)
        else:
            batch = self._compress_all(grads, step, mine)
            round_ = self.pipeline.start(self.exchange, batch, self._fresh_name(f"qsparse.grad.b{index}"), step,
                                         flag=mine.code)
        if mine.bad_tensor is not None:
            report.mark_bad(mine.bad_tensor)
        return round_, bucket, sparse

    def _compressed_scale(self) -> Optional[float]:
        return self._compressed_with

    def _exchange_gradients(self, report: LocalReport, writeback: float) -> Verdict:
        if self._hook_report is None:  # no bucket fired yet (no backward, or no hooks' parameters)
            self._hook_report = LocalReport()
            self._memory_snapshot = self.local_sgd_state.snapshot_memories()
        self.buckets.flush()
        report.bad_tensor = self._hook_report.bad_tensor
        # Under a GradScaler the overflow flag and the scale are known only now: one more small
        # allreduce. Otherwise the flags that rode in the buckets decide.
        agreement = start_agreement(self.comm, report, f"qsparse.s{self.local_sgd_state.step}") if report.amp else None
        results = self._wait_all()
        verdict = (finish_agreement(self.comm, agreement) if agreement is not None
                   else Verdict.from_flags([round_.pending.flags for round_, *_ in results]))
        if verdict.non_finite or verdict.redo:
            self.local_sgd_state.restore_memories(self._memory_snapshot)
        if verdict.non_finite:
            return verdict
        if verdict.redo:  # hooks compressed with a stale loss scale: again with GradScaler's
            self._pending = [self._start_bucket(i, LocalReport()) for i in range(len(self.buckets.buckets))]
            results = self._wait_all()
        factor = self.options.reduce_scale(self.comm.size) * writeback
        with torch.no_grad():
            for round_, bucket, sparse in results:
                for (name, param), total in zip(bucket, round_.totals):
                    write_grad(param, total.mul_(factor), sparse[name])
        return verdict

    def _wait_all(self) -> list:
        """Finish every bucket's round (bits recorded by the pipeline), in bucket order."""
        for round_, _, _ in self._pending:
            round_.totals = self.pipeline.finish(round_)
        results, self._pending = self._pending, []
        return results

    def discard_inflight(self) -> None:
        """Forget the exchanges of a failed attempt (an elastic reset): no bucket or round is pending."""
        self._pending = []
        self.local_sgd_state.pending.clear()
        if self.buckets is not None:
            self.buckets.reset()

    def _on_step_end(self) -> None:
        self._pending, self._hook_report, self._memory_snapshot, self._compressed_with = [], None, None, None
        if self.buckets is not None:
            self.buckets.reset()

    # --- compression ------------------------------------------------------------------------
    def _compress_all(self, named_values, step: int, report: LocalReport):
        state = self.local_sgd_state
        return self.pipeline.compress(named_values, state.compressor, state.error_feedback, seed=state.seed,
                                      step=step, report=report, index=lambda i, name: self._index[name],
                                      fusion=self.fusion, regions=state.regions)

    def _check_can_add_params(self) -> None:
        if self.local_sgd_state.pending:
            raise RuntimeError("add_param_group: model-averaging rounds are in flight (sync_delay); call "
                               "finish_syncs() on every rank first")

    def _on_params_added(self, added) -> None:
        self._make_buckets()
        if self.local_sgd_state.x_hat:
            self.local_sgd_state.x_hat.update({n: p.detach().float().clone() for n, p in added})

    # --- the training job's flags ---------------------------------------------------------
    @classmethod
    def add_arguments(cls, group) -> None:
        group.add_argument("--exchange", default="auto", choices=EXCHANGES,
                           help="auto: allreduce for summable compressors, else the fastest of allgather, "
                                "dense and sharded by the cost model on the measured link; sharded: rank j "
                                "owns region j and re-compresses its sum with error feedback (traffic per "
                                "rank flat in R); dense: each rank decodes its own, one fp32 allreduce")
        group.add_argument("--server-ratio", type=float, default=None, metavar="RATIO",
                           help="with --exchange sharded, and for doublesqueeze: the server pass's ratio "
                                "(default: --ratio)")
        group.add_argument("--fusion", default="bucket", choices=FUSIONS,
                           help="bucket: consecutive tensors compressed as one vector (top-k over the bucket); "
                                "tensor: every tensor alone")
        group.add_argument("--outer", default="none", choices=OUTERS,
                           help="outer optimizer applying the averaged model change to the shared model "
                                "(DiLoCo: nesterov); none: x_hat -= mean change")
        group.add_argument("--outer-lr", type=float, default=0.7, help="outer optimizer's learning rate")
        group.add_argument("--outer-momentum", type=float, default=0.9, help="outer optimizer's momentum")
        group.add_argument("--memory-decay", type=float, default=1.0, metavar="BETA",
                           help="error-feedback memory decay in (0, 1] (SparseLoCo: 0.95; 1 = none)")
        group.add_argument("--sync-delay", type=int, default=0, metavar="TAU",
                           help="local steps a model-averaging round overlaps before it is applied (< H)")
        group.add_argument("--mixing", type=float, default=0.0, metavar="ALPHA",
                           help="weight in [0, 1) the local model keeps when a round is applied")
        group.add_argument("--fragments", type=int, default=1, metavar="F",
                           help="fragments of the model synchronizing on a staggered schedule (1 <= F <= H)")

    @classmethod
    def options_from_args(cls, args) -> dict:
        return {"compressor": args.compressor, "ratio": args.ratio, "levels": args.levels,
                "local_steps": args.local_steps, "warmup_steps": args.warmup_steps, "seed": args.seed,
                "exchange": args.exchange, "fusion": args.fusion, "memory_decay": args.memory_decay,
                "sync_delay": args.sync_delay, "mixing": args.mixing, "fragments": args.fragments,
                **outer_options(args), **({} if args.server_ratio is None else {"server_ratio": args.server_ratio})}

    #: options left out of the setting line at these values (today's rule)
    quiet_defaults = {"memory_decay": 1.0, "sync_delay": 0, "mixing": 0.0, "fragments": 1, "outer_optimizer": None,
                      "server_ratio": None}

    def broadcast_state(self, root_rank: int = 0) -> None:
        """Broadcast parameters and optimizer state (at the start of training); x̂ is then taken
        from the broadcast parameters at the first model-averaging step."""
        super().broadcast_state(root_rank)
        self.local_sgd_state.x_hat = {}
        self.local_sgd_state.pending.clear()
