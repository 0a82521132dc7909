"""How Qsparse-local-SGD picks and serves its exchange (mixed into ``QsparseLocalSGD``).

``exchange="auto"`` with a compressor that cannot be summed asks the cost model
(``comm.cost_model``) on the link the ranks measure (``comm.link``); ``exchange="sharded"``
runs DoubleSqueeze's server pass on the sum of each region (``algorithms.doublesqueeze_server``)
with this rank's owner memories. The rule is stated in ``algorithms.qsparse``.
"""
from typing import Optional

from hvd_qsparse.algorithms.doublesqueeze_server import DoubleSqueezeServer
from hvd_qsparse.comm import choose_exchange, measure_link, predict, registry, round_shape
from hvd_qsparse.compression import Compressor
from hvd_qsparse.optim import Fusion


def exchange_options(kind: str, compressor: Compressor, predivide: float, serve=None, reply=None) -> dict:
    """Keywords of the exchange ``kind`` resolves to: an allreduce takes Horovod's predivide
    factor, the sharded exchange the owners' step (``serve``) and operator (``reply``)."""
    resolved = registry.resolve(kind, compressor)
    if resolved == "allreduce":
        return {"predivide": predivide}
    return {"serve": serve, "reply_compressor": reply} if resolved == "sharded" else {}


class ExchangeChoice:
    """The exchange's choice and the owners' step; needs ``comm``, ``named_params`` and
    ``local_sgd_state`` from the engine."""

    def _resolve_exchange(self, exchange: str, compressor: Compressor, server: Optional[Compressor],
                          fusion: Fusion) -> str:
        """``auto`` with a compressor that cannot be summed, over several ranks: the cost
        model's pick (``comm.cost_model.choose``) for this model's buckets on the link the ranks
        measure now. Otherwise ``exchange`` as given (``auto`` then resolves by the compressor)."""
        ranks = self.comm.size
        if exchange != "auto" or compressor.summable or ranks == 1 or not self.comm.included:
            return exchange
        shape = round_shape(ranks, [g.numel for g in fusion.groups(self.named_params)], compressor, server)
        link = measure_link(self.comm, self._fresh_name("qsparse.link"))
        picked = choose_exchange(shape, link)
        self.exchange_choice = {"picked": picked, "predicted_round_s": predict(shape, link), "link": vars(link),
                                "round": vars(shape)}
        return picked

    def _serve(self, index: int, payloads, ctx, key):
        """The owners' step of ``exchange="sharded"``: DoubleSqueeze's server pass on the sum,
        with this rank's owner memories (``comm.TwoPassExchange``)."""
        state = self.local_sgd_state
        server = DoubleSqueezeServer(state.compressor, state.server_memory, state.server_compressor, average=False)
        return server.serve(index, payloads, ctx, key)
