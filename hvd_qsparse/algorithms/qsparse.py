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

With H = 1 the same rule is run on gradients instead of model changes (error-compensated
compressed SGD: u = m + g, the optimizer steps with the mean of the decoded g̃): for plain SGD at
a constant learning rate the two are the same algorithm, and the gradient form lets the
exchange start from backward hooks, bucket by bucket, while backward still runs, as Horovod
does. Warm-up steps average dense gradients with one allreduce per bucket.
"""
from typing import List, Optional, Tuple

import horovod.torch as hvd
import torch

from hvd_qsparse.algorithms.qsparse_state import EXCHANGES, QsparseState
from hvd_qsparse.algorithms.registry import register_algorithm
from hvd_qsparse.comm import AllgatherExchange, AllreduceExchange, Exchange, Message, Pending
from hvd_qsparse.compression import Compressor, Context, NoneCompressor, create
from hvd_qsparse.ops import derive_seed
from hvd_qsparse.optim import GradientBuckets, WrappedOptimizer


def make_exchange(kind: str, compressor: Compressor) -> Exchange:
    """The exchange for ``--exchange kind`` (``auto`` picks allreduce when summable)."""
    if kind == "allreduce" or (kind == "auto" and compressor.summable):
        return AllreduceExchange(compressor)
    return AllgatherExchange(compressor)


@register_algorithm("qsparse")
class QsparseLocalSGD(WrappedOptimizer):
    """The wrapped optimizer running synchronous Qsparse-local-SGD.

    Args:
        optimizer: any torch optimizer; it takes the local steps.
        named_parameters: ``model.named_parameters()`` (names key memories and seeds).
        compressor: a registered name (``topk+sign`` ...) or a ``Compressor`` instance.
        ratio, levels: the compressor's parameters when given by name.
        local_steps: H. warmup_steps: dense steps first. seed: base seed.
        exchange: ``auto``, ``allgather`` or ``allreduce``.
        bucket_cap_numel: entries per backward-hook bucket (H = 1 and warm-up).
    """

    def __init__(self, optimizer, named_parameters=None, compressor="topk", ratio: Optional[float] = None,
                 levels: Optional[int] = None, local_steps: int = 1, warmup_steps: int = 0, seed: int = 0,
                 exchange: str = "auto", bucket_cap_numel: int = 1 << 22):
        super().__init__(optimizer, named_parameters)
        if not isinstance(compressor, Compressor):
            compressor = create(compressor, ratio=ratio, levels=levels)
        self.qstate = QsparseState(compressor, local_steps, warmup_steps, seed, exchange)
        self.exchange = make_exchange(exchange, compressor)
        self.dense_exchange = AllreduceExchange(NoneCompressor())
        self._pending: List[Tuple[Pending, list, int]] = []
        self.buckets = None
        if local_steps == 1 or warmup_steps > 0:
            self.buckets = GradientBuckets(self.named_params, self._on_bucket_ready, bucket_cap_numel)

    # --- gradient averaging (H = 1 and warm-up), driven by backward hooks -----------------
    def _on_bucket_ready(self, index: int) -> None:
        step = self.qstate.step
        if not self.qstate.averages_gradients(step):
            return
        bucket = self.buckets.buckets[index]
        grads = [(n, p.grad if p.grad is not None else torch.zeros_like(p)) for n, p in bucket]
        if self.qstate.is_warmup(step):
            messages = [Message(g.detach(), Context(g.shape, g.dtype, None)) for _, g in grads]
            pending = self.dense_exchange.start(messages, name=f"qsparse.dense.b{index}")
            analytic = 32 * sum(g.numel() for _, g in grads)
        else:
            messages = self._compress_all(grads, step)
            pending = self.exchange.start(messages, name=f"qsparse.grad.b{index}")
            analytic = sum(self.qstate.compressor.analytic_bits(g.numel()) for _, g in grads)
        self._pending.append((pending, bucket, analytic))

    def synchronize(self) -> None:
        """Finish this step's gradient exchanges and write the averaged gradients (as Horovod's
        ``optimizer.synchronize()``)."""
        if self.buckets is not None:
            self.buckets.flush()
        size = hvd.size()
        for pending, bucket, analytic in self._pending:
            with self.timer.phase("communicate"):
                totals = pending.wait()
            for (_, param), total in zip(bucket, totals):
                mean = total.view_as(param).div_(size).to(param.dtype)
                if param.grad is None:
                    param.grad = mean
                else:
                    param.grad.copy_(mean)
            self._count(pending.sent_bytes, analytic, sum(p.numel() for _, p in bucket))
        self._pending = []

    # --- the step -------------------------------------------------------------------------
    def step(self, closure=None):
        """A local step; on averaging steps after the exchange, on sync steps before it."""
        loss = closure() if closure is not None else None
        step = self.qstate.step
        if self.qstate.averages_gradients(step):
            self.synchronize()
            self.optimizer.step()
        else:
            if step == self.qstate.warmup_steps or not self.qstate.x_hat:
                self._reset_x_hat()
            self.optimizer.step()
            if self.qstate.syncs_model_after(step):
                self._sync_models(step)
        self.qstate.step += 1
        if self.buckets is not None:
            self.buckets.reset()
        return loss

    def _sync_models(self, step: int) -> None:
        x_hat = self.qstate.x_hat
        changes = [(n, x_hat[n] - p.detach().float()) for n, p in self.named_params]
        pending = self.exchange.start(self._compress_all(changes, step), name="qsparse.sync")
        size = hvd.size()
        with self.timer.phase("communicate"):
            totals = pending.wait()
        with torch.no_grad():
            for (name, param), total in zip(self.named_params, totals):
                x_hat[name].sub_(total.view_as(param).div_(size))
                param.copy_(x_hat[name])
        analytic = sum(self.qstate.compressor.analytic_bits(p.numel()) for _, p in self.named_params)
        self._count(pending.sent_bytes, analytic, self.flat_numel())

    def _compress_all(self, named_values, step: int) -> List[Message]:
        state, rank = self.qstate, hvd.rank()
        messages = []
        with self.timer.phase("compress"):
            for name, value in named_values:
                payload, ctx, _ = state.error_feedback.compress(
                    name, value, state.compressor, seed=derive_seed(state.seed, step, name), stream=rank,
                    return_decoded=False)
                messages.append(Message(payload, ctx))
        return messages

    def _reset_x_hat(self) -> None:
        self.qstate.x_hat = {n: p.detach().float().clone() for n, p in self.named_params}

    def _count(self, sent_bytes: int, analytic: int, numel: int) -> None:
        self.qstate.bits.record(self.qstate.step, 8 * sent_bytes, analytic, 32 * numel)

    @torch.no_grad()
    def load_synchronized_model(self) -> None:
        """Copy x̂, the model every rank agrees on, into the parameters (for evaluation at the
        end of training when the last steps were local). A no-op when nothing was synchronized
        by model averaging (H = 1 keeps parameters identical on every rank anyway)."""
        for name, param in self.named_params:
            if name in self.qstate.x_hat:
                param.copy_(self.qstate.x_hat[name])

    # --- state ----------------------------------------------------------------------------
    @property
    def algorithm_state(self) -> QsparseState:
        return self.qstate

    @classmethod
    def add_arguments(cls, group) -> None:
        group.add_argument("--exchange", default="auto", choices=EXCHANGES,
                           help="auto: allreduce for summable compressors, allgather otherwise")

    @classmethod
    def options_from_args(cls, args) -> dict:
        return {"compressor": args.compressor, "ratio": args.ratio, "levels": args.levels,
                "local_steps": args.local_steps, "warmup_steps": args.warmup_steps, "seed": args.seed,
                "exchange": args.exchange}

    def broadcast_state(self, root_rank: int = 0) -> None:
        """Broadcast parameters and optimizer state (at the start of training); x̂ is then taken
        from the broadcast parameters at the first model-averaging step."""
        super().broadcast_state(root_rank)
        self.qstate.x_hat = {}
