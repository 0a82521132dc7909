r"""GD-SEC: gradient descent with sparsified gradient differences and error correction
(Chen, Blum, Takáč, Sadler, "Distributed Learning With Sparsified Gradient Differences",
IEEE Journal of Selected Topics in Signal Processing, 2022).

The objective is f = Σ_m f_m over the M ranks with f_m = (rank m's mean loss)/M, so that ∇f is
the usual average of the ranks' gradients and ∇f_m(θ) = g_m/M, where g_m is what backward
leaves in ``.grad`` on rank m. Worker m keeps ĝ_m, the combination of what it transmitted so
far, and its error term e_m (both start at 0). At step k, entrywise (i indexes parameters):

.. math::
    \Delta_m^k = \nabla f_m(\theta^k) - \beta\,\hat g_m^{k-1} + e_m^k, \qquad
    [\hat\Delta_m^k]_i = \begin{cases} [\Delta_m^k]_i & \text{if } |[\Delta_m^k]_i| >
        \frac{\xi}{M}\,|\theta^k_i - \theta^{k-1}_i| \\ 0 & \text{otherwise,} \end{cases}

    e_m^{k+1} = \Delta_m^k - \hat\Delta_m^k, \qquad
    \hat g_m^k = \beta\,\hat g_m^{k-1} + \hat\Delta_m^k, \qquad
    \hat g^k = \beta\,\hat g^{k-1} + \textstyle\sum_m \hat\Delta_m^k \;\; (= \textstyle\sum_m \hat g_m^k),

and the wrapped optimizer steps with ĝ^k as the gradient (plain SGD with learning rate α is the
paper's θ^{k+1} = θ^k − α ĝ^k). At k = 1, θ^0 = θ^1: the threshold is 0 and every non-zero
entry goes. β ∈ (0, 1], ξ >= 0 (one ξ for every entry).

Two facts follow and are tested under real ranks. With ξ = 0 every non-zero entry of Δ goes,
e stays 0 and ĝ_m^k = ∇f_m(θ^k): plain distributed gradient descent, up to float rounding.
Nothing is lost: ĝ_m^k + e_m^{k+1} = ∇f_m(θ^k) + e_m^k for any β, hence
Σ_{j≤k} ĝ^j = Σ_{j≤k} ∇f(θ^j) − Σ_m e_m^{k+1}: the server's view trails the true gradients by
exactly the workers' error terms.

Implementation: e_m is an ``ErrorFeedback`` memory fed with v = ∇f_m − β ĝ_m and the
``ThresholdSparsifier`` as the compressor, so the fp32 rounding of transmitted values lands in
e_m too. The Δ̂_m^k of all tensors travel as variable-length (index, value) payloads in one
fused variable-size allgather, after a small allgather of payload sizes that is counted in the
bits; every rank decodes every payload and updates the server's view ĝ identically, so no
server process is needed. A rank with nothing to send sends an empty payload and pays only its
8-byte size entry per tensor. When the ranks' payloads together would outweigh two dense fp32
vectors (with mini-batches, sampling noise keeps most entries above the threshold), the sum of
the Δ̂_m travels by a dense allreduce instead (``comm.SparseOrDenseExchange``): the same ĝ, fewer
bytes. ``always_sparse=True`` (``--always-sparse``) keeps the paper's sparse messages at every
step.
"""
from typing import List, Tuple

import horovod.torch as hvd
import torch

from hvd_qsparse.algorithms.gdsec_codec import ThresholdSparsifier
from hvd_qsparse.algorithms.gdsec_state import GdsecState, check_beta, check_xi
from hvd_qsparse.algorithms.registry import register_algorithm
from hvd_qsparse.comm import AllgatherExchange, Message, SparseOrDenseExchange
from hvd_qsparse.optim import WrappedOptimizer


@register_algorithm("gdsec")
class GDSEC(WrappedOptimizer):
    """The wrapped optimizer running GD-SEC (one exchange per ``step``).

    Args:
        optimizer: any torch optimizer; it steps with the server's view ĝ as the gradient
            (``torch.optim.SGD`` without momentum is the paper's method).
        named_parameters: ``model.named_parameters()`` (names key the per-tensor state).
        beta: β ∈ (0, 1]. xi: ξ >= 0 (0 reproduces distributed gradient descent).
        always_sparse: send (index, value) payloads at every step, even when a dense allreduce
            of their sum would move fewer bytes.
    """

    def __init__(self, optimizer, named_parameters=None, beta: float = 1.0, xi: float = 0.0,
                 always_sparse: bool = False):
        super().__init__(optimizer, named_parameters)
        self.gstate = GdsecState(beta, xi)
        codec = ThresholdSparsifier()
        self.exchange = (AllgatherExchange(codec, fixed_size=False) if always_sparse
                         else SparseOrDenseExchange(codec))

    def step(self, closure=None):
        """Transmit this rank's sparsified gradient difference, update ĝ from everyone's, step."""
        loss = closure() if closure is not None else None
        with self.timer.phase("compress"):
            messages, analytic = self._worker_messages()
        with self.timer.phase("communicate"):  # start() waits for every rank's sizes
            pending = self.exchange.start(messages, name="gdsec")
            totals = pending.wait()
        with torch.no_grad():
            for (name, param), total in zip(self.named_params, totals):
                view = self.gstate.server_view_of(name, param)
                view.mul_(self.gstate.beta).add_(total.view_as(view))
                if param.grad is None:
                    param.grad = view.to(param.dtype).clone()
                else:
                    param.grad.copy_(view)
        self.optimizer.step()
        if pending.dense:
            analytic = 32 * self.flat_numel()
        self.gstate.bits.record(self.gstate.step, 8 * pending.sent_bytes, analytic, 32 * self.flat_numel())
        self.gstate.step += 1
        return loss

    def _worker_messages(self) -> Tuple[List[Message], int]:
        """Δ̂_m for every tensor (updating e_m and ĝ_m), and their analytic bits."""
        state, ranks = self.gstate, hvd.size()
        messages, analytic = [], 0
        for name, param in self.named_params:
            grad = param.grad if param.grad is not None else torch.zeros_like(param)
            g_hat = state.g_hat_of(name, param)
            value = grad.detach().float() / ranks - state.beta * g_hat
            codec = ThresholdSparsifier(state.threshold(name, param, ranks))
            payload, ctx, sent = state.error_feedback.compress(name, value, codec)
            g_hat.mul_(state.beta).add_(sent.float())
            messages.append(Message(payload, ctx))
            analytic += codec.analytic_bits_for(codec.count(payload, param.numel()), param.numel())
        return messages, analytic

    # --- state ----------------------------------------------------------------------------
    @property
    def algorithm_state(self) -> GdsecState:
        return self.gstate

    @classmethod
    def add_arguments(cls, group) -> None:
        group.add_argument("--beta", type=float, default=1.0,
                           help="GD-SEC's β in (0, 1]: weight of the previously transmitted combination")
        group.add_argument("--xi", type=float, default=10.0,
                           help="GD-SEC's threshold scale ξ >= 0: an entry of the gradient difference is "
                                "withheld while |Δ_i| <= (ξ/M)|θ_i − θ_i(previous step)|; 0 = plain GD")
        group.add_argument("--always-sparse", action="store_true",
                           help="GD-SEC: send (index, value) payloads at every step, even when an allreduce "
                                "of their dense sum would move fewer bytes (the default switches)")

    @classmethod
    def options_from_args(cls, args) -> dict:
        """β, ξ and the exchange from ``--beta``, ``--xi`` and ``--always-sparse``. GD-SEC talks every step and sends its own
        payloads: ``--compressor``, ``--ratio``, ``--levels`` and ``--local-steps`` do not apply.

        Raises:
            ValueError: a bad ``--beta`` or ``--xi``, or ``--warmup-steps`` other than 0.
        """
        if getattr(args, "warmup_steps", 0):
            raise ValueError(f"--warmup-steps must be 0 with gdsec (it has no dense warm-up), got {args.warmup_steps}")
        return {"beta": check_beta(args.beta, "--beta"), "xi": check_xi(args.xi, "--xi"),
                "always_sparse": bool(getattr(args, "always_sparse", False))}
