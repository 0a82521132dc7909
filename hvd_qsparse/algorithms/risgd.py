r"""RI-SGD: redundancy-infused local SGD (Haddadpour, Kamani, Mahdavi, Cadambe, ICML 2019).

The data set is split into p chunks D_0 … D_{p−1}; worker j holds q of them,
S_j = D_j ∪ D_{j+1} ∪ … ∪ D_{j+q−1} (indices mod p), and draws its mini-batches ξ from S_j.
With R live workers, η the learning rate and τ the local steps,

.. math::
    x^{(j)}_{t+1} = x^{(j)}_t - \eta\,\nabla f\big(x^{(j)}_t;\ \xi^{(j)}_t\big),\quad \xi^{(j)}_t \subset S_j,
    \qquad\text{and when } (t+1) \bmod \tau = 0:\quad
    x^{(j)}_{t+1} \leftarrow \tfrac1R \textstyle\sum_r x^{(r)}_{t+1}.

The average may go through any registered compressor C with error feedback; it is then
Qsparse-local-SGD's synchronization, u = m^(j) + x̂ − x^(j), m^(j) ← u − C(u),
x̂ ← x̂ − (1/R) Σ_r C(u^(r)), x^(j) = x̂, which with C the identity is the plain average above.
So this class runs on ``QsparseLocalSGD``'s engine (it is that algorithm with a data placement,
so it extends it and touches it only through its public methods, and its state object
composes ``QsparseState`` rather than extending it) (τ = 1 takes its gradient form: the same
algorithm for SGD, exchanged from backward hooks); what RI-SGD adds is the data placement
(``make_sampler``: q = 1 is plain local SGD, p = q gives every worker all the data) and the
fault tolerance: with at most q − 1 workers lost every chunk is still held by a survivor, so
Horovod's elastic mode (``risgd_elastic.RiSGDElasticState``) can go on with the survivors,
committing at the end of every ``commit_every``-th round, when all replicas agree.
"""
from typing import List, Optional

import torch

from hvd_qsparse.algorithms.qsparse import QsparseLocalSGD
from hvd_qsparse.algorithms.qsparse_state import QsparseState
from hvd_qsparse.algorithms.registry import register_algorithm
from hvd_qsparse.algorithms.risgd_state import RiSGDState, check_hyperparameters
from hvd_qsparse.data import RedundantSampler


@register_algorithm("risgd")
class RISGD(QsparseLocalSGD):
    """The wrapped optimizer running RI-SGD.

    Args:
        optimizer: any torch optimizer; it takes the local steps.
        named_parameters: ``model.named_parameters()`` (names key memories and seeds).
        compressor: how models are averaged: ``none`` (the paper: a plain fp32 average) or any
            registered name or ``Compressor`` (then with error feedback).
        ratio, levels: the compressor's parameters when given by name.
        local_steps: τ, steps between two averages.
        redundancy: q, chunks per worker (q = 1: plain local SGD).
        num_chunks: p; None takes the number of workers when the sampler is made.
        non_iid: label-sorted chunks (each worker sees few classes; where redundancy helps).
        commit_every: sync rounds between elastic commits.
        warmup_steps, seed, exchange, bucket_cap_numel, fusion, memory_decay, outer_optimizer,
            outer_lr, outer_momentum, server_ratio: as for ``QsparseLocalSGD``.
        sync_delay, mixing, fragments: only their defaults (0, 0.0, 1): an elastic commit needs
            every replica equal at the end of each round, which a delayed, mixed or fragmented
            round does not give.
    """

    def __init__(self, optimizer, named_parameters=None, compressor="none", ratio: Optional[float] = None,
                 levels: Optional[int] = None, local_steps: int = 4, redundancy: int = 1,
                 num_chunks: Optional[int] = None, non_iid: bool = False, commit_every: int = 1,
                 warmup_steps: int = 0, seed: int = 0, exchange: str = "auto", bucket_cap_numel: int = 1 << 22,
                 fusion: str = "bucket", memory_decay: float = 1.0, sync_delay: int = 0, mixing: float = 0.0,
                 fragments: int = 1, outer_optimizer=None, outer_lr: float = 0.7, outer_momentum: float = 0.9,
                 server_ratio: Optional[float] = None, options=None):
        streaming = {"sync_delay (--sync-delay)": (sync_delay, 0), "mixing (--mixing)": (mixing, 0.0),
                     "fragments (--fragments)": (fragments, 1)}
        for name, (value, default) in streaming.items():
            if value != default:
                raise ValueError(f"{name} must be {default} for RI-SGD (its elastic commits need every replica "
                                 f"equal at each round's end), got {value!r}; use --algorithm qsparse")
        self._placement = (redundancy, num_chunks, non_iid, commit_every)
        super().__init__(optimizer, named_parameters, compressor=compressor, ratio=ratio, levels=levels,
                         local_steps=local_steps, warmup_steps=warmup_steps, seed=seed, exchange=exchange,
                         bucket_cap_numel=bucket_cap_numel, fusion=fusion, memory_decay=memory_decay,
                         outer_optimizer=outer_optimizer, outer_lr=outer_lr, outer_momentum=outer_momentum,
                         server_ratio=server_ratio, options=options)

    def _new_algorithm_state(self) -> RiSGDState:
        return RiSGDState(super()._new_algorithm_state(), *self._placement)

    @property
    def local_sgd_state(self) -> QsparseState:
        """The local SGD's state (τ, x̂, memory, step, bits), a part of RI-SGD's ``algorithm_state``."""
        return self.algorithm_state.local_sgd

    # --- the data placement ---------------------------------------------------------------
    def make_sampler(self, labels: torch.Tensor, batch_size: int) -> RedundantSampler:
        """This worker's ``RedundantSampler`` over a data set with these labels (one per sample):
        p chunks (label-sorted when ``non_iid``), q of them from slot ``hvd.rank()``. With fewer
        workers than chunks, the chunks of the missing slots are adopted at once.

        Raises:
            ValueError: q > p, more workers than chunks, or a bad batch size (named in the message).
        """
        size = self.comm.size
        num_chunks = self.algorithm_state.num_chunks or size
        if size > num_chunks:
            raise ValueError(f"num_chunks (--chunks) must be at least the number of workers, {size}; "
                             f"got {num_chunks}")
        state = self.algorithm_state
        sampler = RedundantSampler(len(labels), batch_size, num_chunks, state.redundancy, slot=self.comm.rank,
                                   seed=self.local_sgd_state.seed, labels=labels if state.non_iid else None)
        sampler.set_workers(list(range(size)))
        return sampler

    # --- elastic hooks --------------------------------------------------------------------
    def commit_due(self) -> bool:
        """True when the training loop should commit its elastic state now (a round just ended)."""
        return self.algorithm_state.commit_due()

    @property
    def rounds_done(self) -> int:
        """Communication rounds in the steps taken so far."""
        return self.algorithm_state.rounds_done()

    def on_membership_change(self, live_slots: List[int], step: int) -> None:
        """After an elastic reset: forget exchanges of the failed attempt, take the agreed step
        counter, and record the new membership. Parameters and x̂ are re-synchronized by
        ``broadcast_state``; each survivor keeps its own memory (a lost worker's residual is lost
        with it)."""
        self.discard_inflight()
        self.local_sgd_state.step = step
        self.algorithm_state.memberships.append((step, list(live_slots)))

    # --- the training job's flags ---------------------------------------------------------
    @classmethod
    def add_arguments(cls, group) -> None:
        # --exchange comes from qsparse's group, which shares it.
        group.add_argument("--redundancy", type=int, default=1, metavar="Q",
                           help="q: chunks of the data set per worker, 1 <= q <= p (1 = plain local SGD)")
        group.add_argument("--chunks", type=int, default=None, metavar="P",
                           help="p: chunks of the data set (default: the number of workers at the start; "
                                "in an elastic job that may grow, set it to --max-np)")
        group.add_argument("--non-iid", action="store_true", help="label-sorted chunks (each worker sees few classes)")
        group.add_argument("--commit-every", type=int, default=1, metavar="N",
                           help="elastic jobs: commit the state every N communication rounds")

    @classmethod
    def options_from_args(cls, args) -> dict:
        options = super().options_from_args(args)
        options.update(redundancy=args.redundancy, num_chunks=args.chunks, non_iid=args.non_iid,
                       commit_every=args.commit_every)
        check_hyperparameters(args.redundancy, args.chunks, args.non_iid, args.commit_every)
        return options

