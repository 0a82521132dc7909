r"""DoubleSqueeze (Tang, Yu, Lian, Zhang, Liu, ICML 2019): error-compensated compression twice.

Every step, with the compressor Q, worker i's gradient g_i, its memory δ_i and the server
memory δ̄,

.. math::
    v_i = Q(g_i + \delta_i),\quad \delta_i \leftarrow g_i + \delta_i - v_i,\qquad
    v = Q\big(\tfrac1R \textstyle\sum_i v_i + \bar\delta\big),\quad
    \bar\delta \leftarrow \tfrac1R \textstyle\sum_i v_i + \bar\delta - v,

and every rank hands v to the wrapped optimizer as its gradient (x ← x − η v for plain SGD).

Decisions: the gradients of all parameters form one flat fp32 vector of d entries, cut into R
contiguous near-equal shards (``comm.shard_sizes``); δ_i and δ̄ are kept per shard and Q runs
per shard, so the compressor's d is the shard size (⌈d/R⌉ or ⌊d/R⌋). With
``server_layout="sharded"`` rank j serves shard j (alltoall, then allgather); with ``"ps"``
rank 0 serves every shard (gather, then broadcast), as the paper's figure. Both layouts use the
same shards and seeds and give bit-identical results. The exchange runs in ``step()``, after
backward; DoubleSqueeze has no local steps and no warm-up. ``server_memory=False`` runs the
server pass without δ̄ (the ablation).

``shard_scope="tensor"`` cuts every tensor into R regions instead (rank j serves region j of
each, ``optim.pipeline.region_values``), so Q never mixes tensors: on the flat vector, shard j's
top-k weighs an embedding's entries against LayerNorm gains and gives each quarter of the model
the same budget, which at 4 ranks under AdamW costs the transformer +8% (per-tensor: +3.4%,
docs/per-step-compression.md).
"""
from typing import List, Optional

import torch

from hvd_qsparse.algorithms.doublesqueeze_server import DoubleSqueezeServer
from hvd_qsparse.algorithms.doublesqueeze_state import SERVER_LAYOUTS, SHARD_SCOPES, DoubleSqueezeState
from hvd_qsparse.algorithms.registry import register_algorithm
from hvd_qsparse.comm import JoinInProgress, Message, make_exchange, ring_share
from hvd_qsparse.comm.join_fallback import dense_sum
from hvd_qsparse.compression import Compressor, create, with_ratio
from hvd_qsparse.optim import Batch, LocalReport, Verdict, WrappedOptimizer, agree, read_grad, write_grad


@register_algorithm("doublesqueeze")
class DoubleSqueeze(WrappedOptimizer):
    """The wrapped optimizer running DoubleSqueeze.

    Args:
        optimizer: any torch optimizer; it steps with the server's reply v as the gradient.
        named_parameters: ``model.named_parameters()`` (fixes the order of the flat gradient).
        compressor: a registered name (``sign``, ``topk+qsgd`` ...) or a ``Compressor`` instance.
        ratio, levels: the compressor's parameters when given by name.
        server_layout: ``sharded`` or ``ps``.
        server_memory: keep the server memory δ̄ (the algorithm); False for the ablation.
        shard_scope: ``flat`` (R shards of the flat gradient) or ``tensor`` (R regions of each tensor).
        server_ratio: the server pass's ratio (its Q is the workers' at this ratio; None: the
            same Q). The server's mean of R sparse messages can hold up to R times the
            workers' entries, which its second compression cuts back to the ratio: a larger
            server ratio keeps more of it (docs/per-step-compression.md).
        seed: base seed of the per-(step, shard) seeds.
        options: Horovod's keywords (``optim.HorovodOptions``); ``op=hvd.Sum`` hands R·v to the
            optimizer.
    """

    def __init__(self, optimizer, named_parameters=None, compressor="sign", ratio=None, levels=None,
                 server_layout: str = "sharded", server_memory: bool = True, seed: int = 0,
                 server_ratio: Optional[float] = None, shard_scope: str = "flat", options=None):
        super().__init__(optimizer, named_parameters, options)
        self.options.refuse("doublesqueeze", groups="it exchanges one flat, sharded gradient per step",
                            gradient_predivide_factor="its payloads are decoded and averaged in fp32")
        if not isinstance(compressor, Compressor):
            compressor = create(compressor, ratio=ratio, levels=levels)
        self._hyperparameters = (compressor, server_layout, server_memory, seed, with_ratio(compressor, server_ratio),
                                 shard_scope)
        self.algorithm_state = self._new_algorithm_state()

    def _new_algorithm_state(self) -> DoubleSqueezeState:
        compressor, layout, memory, seed, reply, scope = self._hyperparameters
        state = DoubleSqueezeState(compressor, self.comm.size, self.flat_numel(), layout, memory, seed, reply, scope)
        server = DoubleSqueezeServer(compressor, state.server_memory, state.server_compressor)
        self.exchange = make_exchange(layout, compressor, self.comm, serve=server.serve,
                                      reply_compressor=state.server_compressor)
        return state

    def _averages_gradients(self) -> bool:
        return True

    def _exchanged_names(self):
        if self.algorithm_state.shard_scope == "tensor":
            return self.named_params
        return [(f"shard {j} of the flat gradient", None) for j in range(len(self.algorithm_state.shard_sizes))]

    def _exchange_gradients(self, report: LocalReport, writeback: float) -> Verdict:
        """Both compression passes on this step's gradients; v becomes the gradient."""
        state, step = self.algorithm_state, self.algorithm_state.step
        snapshot = state.worker_memory.snapshot()
        batch = self._worker_pass(self._flat_gradient(), step, report)
        verdict = agree(self.comm, report, f"doublesqueeze.s{step}")
        if verdict.non_finite:
            state.worker_memory.restore(snapshot)
            return verdict
        try:
            round_ = self.pipeline.run(self.exchange, batch, self._fresh_name("doublesqueeze"), step)
        except JoinInProgress:
            return self._joined_step(batch.messages, writeback, verdict)
        factor = writeback * (self.comm.size if self.options.op == "sum" else 1)
        self._write_gradients(torch.cat([t.reshape(-1) for t in round_.totals]).mul_(factor))
        state.last_messages, state.last_round = batch.messages, round_.pending
        return verdict

    def _joined_step(self, messages: List[Message], writeback: float, verdict: Verdict) -> Verdict:
        """A rank has called ``hvd.join()``: the servers of its shards are gone, so this step the
        workers' v_i are summed by a dense allreduce (joined ranks contribute zeros) and their
        mean is the update, without the server's second squeeze; the server memories wait."""
        totals, _, sent = dense_sum(self.comm, self.algorithm_state.compressor, messages, "doublesqueeze")
        scale = self.options.reduce_scale(self.comm.size)  # the mean for Average, the sum for Sum
        self._write_gradients(torch.cat(totals).mul_(scale * writeback))
        self.algorithm_state.bits.record(self.algorithm_state.step, 8 * sent, 8 * sent, 32 * self.flat_numel(),
                                         received=8 * ring_share(sent, self.comm.size))
        return verdict

    def _flat_gradient(self) -> torch.Tensor:
        return torch.cat([read_grad(p, 1.0 / self.loss_scale).reshape(-1) for _, p in self.named_params])

    def _worker_pass(self, flat: torch.Tensor, step: int, report: LocalReport) -> Batch:
        """v_i = Q(g_i + δ_i) shard by shard (shard j, or tensor j, marks index j when non-finite);
        δ_i keeps the rest."""
        state = self.algorithm_state
        if state.shard_scope == "tensor":
            tensors = [(n, g) for (n, _), g in zip(self.named_params, flat.split([p.numel() for _, p in self.named_params]))]
            return self.pipeline.compress(tensors, state.compressor, state.worker_memory, seed=state.seed, step=step,
                                          report=report, regions=self.comm.size)
        shards = [(f"shard{j}", shard) for j, shard in enumerate(flat.split(state.shard_sizes))]
        return self.pipeline.compress(shards, state.compressor, state.worker_memory, seed=state.seed, step=step,
                                      report=report)

    @torch.no_grad()
    def _write_gradients(self, update: torch.Tensor) -> None:
        offset = 0
        for _, param in self.named_params:
            was_sparse = param.grad is not None and param.grad.is_sparse
            write_grad(param, update[offset: offset + param.numel()], was_sparse)
            offset += param.numel()

    def _check_can_add_params(self) -> None:
        if self.algorithm_state.step > 0:
            raise ValueError("doublesqueeze: add_param_group after the first step would change the shard plan "
                             "that the memories follow; add every group before training")

    def _on_params_added(self, added) -> None:
        self.algorithm_state = self._new_algorithm_state()

    # --- state ----------------------------------------------------------------------------
    @classmethod
    def add_arguments(cls, group) -> None:
        group.add_argument("--server-layout", default="sharded", choices=SERVER_LAYOUTS,
                           help="sharded: rank j serves shard j (alltoall + allgather); ps: rank 0 serves "
                                "all (gather + broadcast). DoubleSqueeze talks every step: --local-steps "
                                "does not apply")
        group.add_argument("--no-server-memory", action="store_true",
                           help="run the server pass without its error-feedback memory (ablation)")
        group.add_argument("--shard-scope", default="flat", choices=SHARD_SCOPES,
                           help="flat: R shards of the flat gradient; tensor: R regions of every tensor "
                                "(the compressor never mixes tensors)")

    @classmethod
    def options_from_args(cls, args) -> dict:
        if args.warmup_steps != 0:
            raise ValueError(f"--warmup-steps must be 0 with doublesqueeze (it compresses from the first "
                             f"step), got {args.warmup_steps}")
        return {"compressor": args.compressor, "ratio": args.ratio, "levels": args.levels,
                "server_layout": args.server_layout, "server_memory": not args.no_server_memory,
                "seed": args.seed, **({} if args.server_ratio is None else {"server_ratio": args.server_ratio}),
                **({} if args.shard_scope == "flat" else {"shard_scope": args.shard_scope})}
