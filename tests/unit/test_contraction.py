"""Biased operators are contractions: ||x - C(x)||^2 <= (1 - delta) ||x||^2 (docs/algorithms.md).

Deterministic operators are checked on every input (with a 1e-5 relative slack for float32
rounding); randomized ones in expectation over seeds (mean over the stated number of seeds,
with the stated slack).
"""
import pytest
import torch

from hvd_qsparse.compression import create
from hvd_qsparse.ops import qsgd_beta

from ._helpers import randn

ROUND = 1e-5  # relative slack for float32 rounding in deterministic checks


def sq_err(comp, x, seed=None, stream=0):
    y = comp.decompress(*comp.compress(x, seed=seed, stream=stream)).double()
    return (x.double() - y).pow(2).sum().item()


def inputs(d):
    """Named nonzero test vectors of d entries."""
    cases = {
        "gauss": randn(d, seed=d),
        "heavy": randn(d, seed=d + 1) ** 3,
        "const": torch.full((d,), 0.3),
        "one-hot": torch.nn.functional.one_hot(torch.tensor(d // 2), d).float() * -2.0,
        "with-zeros": torch.where(torch.arange(d) % 3 == 0, torch.zeros(d), randn(d, seed=2)),
    }
    return {kind: x for kind, x in cases.items() if bool(x.any())}


@pytest.mark.parametrize("d", [1, 10, 1000])
@pytest.mark.parametrize("ratio", [0.001, 0.05, 0.5, 1.0])
def test_topk_contraction_deterministic(d, ratio):
    comp = create("topk", ratio=ratio)
    k = comp.sparsifier.k(d)
    for kind, x in inputs(d).items():
        sq = x.double().pow(2).sum().item()
        assert sq_err(comp, x) <= (1 - k / d) * sq * (1 + ROUND) + 1e-12, kind


@pytest.mark.parametrize("d", [1, 10, 1000])
def test_sign_contraction(d):
    """For scaled sign the error is exactly ||x||^2 - ||x||_1^2 / d, i.e. delta = ||x||_1^2/(d||x||^2)."""
    comp = create("sign")
    for kind, x in inputs(d).items():
        xd = x.double()
        sq = xd.pow(2).sum().item()
        delta = xd.abs().sum().item() ** 2 / (d * sq)
        assert 0 < delta <= 1
        err = sq_err(comp, x)
        assert err <= (1 - delta) * sq * (1 + ROUND) + 1e-9 * sq, kind
        assert abs(err - (1 - delta) * sq) <= 1e-5 * sq, kind  # tight: equality up to rounding


@pytest.mark.parametrize("d", [10, 1000])
@pytest.mark.parametrize("ratio", [0.01, 0.2, 1.0])
def test_topk_sign_contraction(d, ratio):
    """Q o Top_k with scaled sign: delta = ||Top_k(x)||_1^2 / (k ||x||^2) >= 1/d."""
    comp = create("topk+sign", ratio=ratio)
    k = comp.sparsifier.k(d)
    for kind, x in inputs(d).items():
        xd = x.double()
        sq = xd.pow(2).sum().item()
        kept = xd[comp.sparsifier.select(x, None)]
        delta = kept.abs().sum().item() ** 2 / (k * sq)
        assert delta >= 1 / d * (1 - ROUND)
        err = sq_err(comp, x)
        assert err <= (1 - delta) * sq * (1 + ROUND) + 1e-9 * sq, kind
        assert err < sq, kind


@pytest.mark.parametrize("levels", [2, 16, 256])
@pytest.mark.parametrize("kind", ["gauss", "heavy", "const"])
def test_topk_qsgd_contraction_in_expectation(levels, kind):
    """Default (scaled by 1/(1+beta)) QSGD after Top_k: E||x - C(x)||^2 <= (1 - delta)||x||^2
    with delta = (k/d) / (1 + beta), beta = qsgd_beta(k, s) > 0; mean over 200 seeds, 1% slack."""
    d, ratio, n = 1000, 0.1, 200
    comp = create("topk+qsgd", ratio=ratio, levels=levels)
    k = comp.sparsifier.k(d)
    beta = qsgd_beta(k, levels)
    delta = (k / d) / (1 + beta)
    assert delta > 0
    x = inputs(d)[kind]
    sq = x.double().pow(2).sum().item()
    mean = sum(sq_err(comp, x, seed=s) for s in range(n)) / n
    assert mean <= (1 - delta) * sq * 1.01


@pytest.mark.parametrize("name", ["qsgd", "randk+qsgd"])
def test_scaled_qsgd_contraction_in_expectation(name):
    """Plain scaled QSGD (delta = 1/(1+beta)) and Rand_k + scaled QSGD (delta = (k/d)/(1+beta))."""
    d, n, levels = 400, 300, 2
    comp = create(name, ratio=0.25, levels=levels)
    k = comp.sparsifier.k(d) if name.startswith("randk") else d
    delta = (k / d) / (1 + qsgd_beta(k, levels))
    x = randn(d, seed=9)
    sq = x.double().pow(2).sum().item()
    mean = sum(sq_err(comp, x, seed=s) for s in range(n)) / n
    assert mean <= (1 - delta) * sq * 1.01


@pytest.mark.parametrize("kind", ["gauss", "heavy", "one-hot"])
def test_randk_contraction_in_expectation(kind):
    """E||x - Rand_k(x)||^2 = (1 - k/d)||x||^2. Mean over 2000 seeds; slack 5% of ||x||^2 for
    the smooth inputs, and the one-hot input checks the average of a 0/1 outcome instead."""
    d, n = 200, 2000
    comp = create("randk", ratio=0.1)
    k = comp.sparsifier.k(d)
    x = inputs(d)[kind]
    sq = x.double().pow(2).sum().item()
    mean = sum(sq_err(comp, x, seed=s) for s in range(n)) / n
    if kind == "one-hot":
        assert abs(mean / sq - (1 - k / d)) < 0.035  # Bernoulli(k/d) over 2000 seeds: std 0.0067
    else:
        assert mean <= (1 - k / d) * sq * 1.05
        assert mean >= (1 - k / d) * sq * 0.95


@pytest.mark.parametrize("name", ["randk+sign"])
def test_randk_sign_contraction_in_expectation(name):
    d, n = 300, 500
    comp = create(name, ratio=0.2)
    x = randn(d, seed=4)
    sq = x.double().pow(2).sum().item()
    mean = sum(sq_err(comp, x, seed=s) for s in range(n)) / n
    # each draw's error is ||x||^2 - ||x_S||_1^2 / k <= ||x||^2 - ||x_S||^2 / k, and
    # E||x_S||^2 = (k/d)||x||^2, so E <= (1 - 1/d)||x||^2
    assert mean <= (1 - 1 / d) * sq
    assert mean < sq
