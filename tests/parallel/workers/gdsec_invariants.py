"""GD-SEC's invariants, checked at every step on every rank (full-batch GD on a small network).

The worker recomputes independently what each rank must send (Δ and the threshold mask), so
it checks the bits counted against the real payload sizes, the error-correction invariant
ĝ_m^k + e_m^{k+1} = ∇f_m(θ^k) + e_m^k, that the server's view is Σ_m ĝ_m and identical on
every rank, and that the running sum of the server's views trails the running sum of the true
averaged gradients by exactly Σ_m e_m. Arguments: β, ξ, steps, exchange: ``sparse`` (the
paper's messages at every step, ``always_sparse=True``) or ``auto`` (the default: a dense
allreduce of the sum when all ranks' payloads outweigh two dense fp32 vectors; the worker
predicts which path each step takes from every rank's predicted payload), the cap ρ
(``max_density``; with ρ < 1 some step must be capped, else the run is refused as trivial) and
``ec`` or ``ef21`` (error correction off: e_m stays 0 and the step's Δ̂_m = ĝ_m^k − β ĝ_m^{k−1}
must be Δ_m itself on exactly the predicted number of entries and 0 elsewhere; the running-sum
check is the paper's and is left out).
"""
import math
import sys

import horovod.torch as hvd
import torch
from common import batch, make_model

import hvd_qsparse
from hvd_qsparse.comm.sparse_or_dense import DENSE_FACTOR
from hvd_qsparse.ops import aligned, ceil_log2, packed_nbytes

ATOL = 2e-6
SILENT_XI = 1e6
COLLECTIVES = ["allreduce", "allreduce_async", "allgather", "allgather_async", "broadcast", "broadcast_async"]
CALLS = []


def spy(name, real):
    def counted(*args, **kwargs):
        CALLS.append(name)
        return real(*args, **kwargs)
    return counted


def close(a, b, what):
    diff = float((a - b).abs().max())
    assert diff <= ATOL * max(1.0, float(b.abs().max())), f"{what}: off by {diff}"


def expected_bits(named, grads, state, previous, ranks):
    """Bytes the sparse payloads must hold (size entries included), from this worker's own Δ and
    thresholds; and (sent, withheld)."""
    nbytes, sent, withheld, capped = 0, 0, 0, 0
    for name, param in named:
        delta = grads[name] / ranks - state.beta * state.g_hat_of(name, param) + state.error_of(name, param)
        prev = previous.get(name, param.detach())
        k = int((delta.abs() > state.xi / ranks * (param.detach() - prev).abs()).sum())
        cap = math.ceil(round(state.max_density * param.numel(), 6))
        capped, k = capped + (k > cap), min(k, cap)
        nbytes += 4 * k + aligned(packed_nbytes(k, ceil_log2(param.numel()))) + 8  # + its size entry
        sent, withheld = sent + k, withheld + int((delta != 0).sum()) - k
    return nbytes, sent, withheld, capped


def expected_path(nbytes, named, exchange):
    """(bits this rank sends, the collectives ``step`` calls, dense?) for the predicted payloads."""
    if exchange == "sparse":
        return 8 * nbytes, ["allgather_async", "allgather_async"], False
    numel = sum(p.numel() for _, p in named)
    payloads = sum(hvd.allgather_object(nbytes - 8 * len(named), name="predicted"))
    if payloads > DENSE_FACTOR * 4 * numel:
        return 8 * (8 * len(named) + 4 * numel), ["allgather", "allreduce_async"], True
    return 8 * nbytes, ["allgather", "allgather_async"], False


def check_ef21_step(state, named, step, before, grads, sent):
    """e_m = 0 and Δ̂_m is Δ_m = ∇f_m − β ĝ_m^{k−1} kept on ``sent`` entries in all."""
    kept = 0
    for name, param in named:
        g_hat = state.g_hat_of(name, param)
        assert not state.error_of(name, param).any(), f"step {step} {name}: an error term without error correction"
        delta = grads[name] / hvd.size() - state.beta * before["g_hat"][name]
        sent_part = g_hat - state.beta * before["g_hat"][name]
        mask = delta.abs() > 0
        on = sent_part != 0  # ĝ ← β ĝ + Δ̂ in fp32: an entry that did not go gives exactly 0 here
        close(torch.where(on, sent_part, torch.zeros_like(sent_part)), torch.where(on, delta, torch.zeros_like(delta)),
              f"step {step} {name}: what went is not Δ")
        assert bool((on <= mask).all()), f"step {step} {name}: an entry went that Δ does not have"
        kept += int(on.sum())
    assert kept == sent, f"step {step}: {kept} entries went, {sent} predicted"


def check_step(opt, model, step, before, grads, bits, sent):
    state, ranks, named = opt.algorithm_state, hvd.size(), list(model.named_parameters())
    assert opt.bits.bits_at(step) == bits, f"step {step}: counted {opt.bits.bits_at(step)} bits, payloads {bits}"
    if not state.error_correction:
        check_ef21_step(state, named, step, before, grads, sent)
    for name, param in named:
        g_hat, error = state.g_hat_of(name, param), state.error_of(name, param)
        views = hvd.allgather(state.server_view[name].unsqueeze(0), name=f"s.{step}.{name}")
        assert all(torch.equal(views[0], v) for v in views), f"step {step} {name}: server views differ"
        close(state.server_view[name], hvd.allreduce(g_hat, op=hvd.Sum, name=f"v.{step}.{name}"),
              f"step {step} {name}: server view vs sum of g_hat")
        if not state.error_correction:
            continue
        close(g_hat + error, grads[name] / ranks + before["error"][name], f"step {step} {name}: EF invariant")
        before["sum_view"][name] += state.server_view[name]
        before["sum_true"][name] += hvd.allreduce(grads[name], op=hvd.Average, name=f"g.{step}.{name}")
        errors = hvd.allreduce(error, op=hvd.Sum, name=f"e.{step}.{name}")
        close(before["sum_view"][name] + errors, before["sum_true"][name], f"step {step} {name}: nothing lost")


def main(beta, xi, steps, exchange, max_density, correction):
    hvd.init()
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model.named_parameters(),
                                           algorithm="gdsec", beta=beta, xi=xi, always_sparse=exchange == "sparse",
                                           max_density=max_density, error_correction=correction == "ec")
    opt.broadcast_state()
    x, y = batch(hvd.rank(), 0)  # full batch: the same local data every step
    named = list(model.named_parameters())
    running = {"sum_view": {n: torch.zeros_like(p) for n, p in named},
               "sum_true": {n: torch.zeros_like(p) for n, p in named}}
    totals, previous, dense_steps, capped = [0, 0], {}, 0, 0
    for step in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        grads = {n: p.grad.detach().clone() for n, p in named}
        nbytes, sent, withheld, capped_now = expected_bits(named, grads, opt.algorithm_state, previous, hvd.size())
        capped += capped_now
        bits, calls, dense = expected_path(nbytes, named, exchange)
        dense_steps += dense
        running["error"] = {n: opt.algorithm_state.error_of(n, p).clone() for n, p in named}
        running["g_hat"] = {n: opt.algorithm_state.g_hat_of(n, p).clone() for n, p in named}
        previous = {n: p.detach().clone() for n, p in named}
        CALLS.clear()
        real = {name: getattr(hvd, name) for name in COLLECTIVES}
        for name in COLLECTIVES:
            setattr(hvd, name, spy(name, real[name]))
        opt.step()
        for name in COLLECTIVES:
            setattr(hvd, name, real[name])
        assert CALLS == calls, f"step {step}: collectives {CALLS}, expected {calls}"
        check_step(opt, model, step, running, grads, bits, sent)
        totals = [totals[0] + sent, totals[1] + withheld]
    sent, withheld = totals
    if xi > 0:
        assert sent > 0 and withheld > 0, f"a trivial run: {sent} entries sent, {withheld} withheld"
    if exchange == "auto" and xi < SILENT_XI and max_density == 1:  # step 1 sends every entry: dense; then sparse
        assert 0 < dense_steps < steps, f"dense in {dense_steps} of {steps} steps: one path untested"
    if max_density < 1:
        assert capped > 0, f"the cap {max_density} never bit"
    if xi >= SILENT_XI:  # after the first step nothing passes: only the 64-bit size entry per tensor
        silent = [opt.bits.bits_at(s) for s in range(1, steps)]
        assert silent == [64 * len(named)] * (steps - 1), f"silent steps sent {silent}"
    print(f"rank {hvd.rank()}: OK beta={beta} xi={xi} {exchange} sent {sent} withheld {withheld} "
          f"dense steps {dense_steps} capped {capped} bits {opt.bits.total_sent}", flush=True)


if __name__ == "__main__":
    main(float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5]), sys.argv[6])
