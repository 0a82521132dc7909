"""Top_k and Rand_k: which coordinates survive, and how they travel."""
import json
import math
import subprocess
import sys

import pytest
import torch

from hvd_qsparse.compression import create
from hvd_qsparse.ops import aligned, ceil_log2, packed_nbytes

from ._helpers import REPO_ROOT, randn, subprocess_env


def topk_oracle(x, k):
    """Sort-based oracle: stable sort by decreasing |x| (ties keep the lowest indices first)."""
    order = torch.sort(-x.abs().double(), stable=True).indices
    return order[:k].sort().values


# --- Top_k ------------------------------------------------------------------------------------

@pytest.mark.parametrize("d", [1, 2, 10, 1000, 4097])
@pytest.mark.parametrize("ratio", [1e-4, 0.01, 0.1, 0.5, 0.999, 1.0])
def test_topk_selects_k_largest_magnitudes(d, ratio):
    comp = create("topk", ratio=ratio)
    x = randn(d, seed=d)
    k = comp.sparsifier.k(d)
    idx = comp.sparsifier.select(x, None)
    assert idx.numel() == k
    assert torch.equal(idx, topk_oracle(x, k))
    # every kept magnitude >= every dropped magnitude
    mask = torch.zeros(d, dtype=torch.bool)
    mask[idx] = True
    if 0 < k < d:
        assert x[mask].abs().min() >= x[~mask].abs().max()
    # the decoded tensor carries exactly those values, zero elsewhere
    payload, ctx = comp.compress(x)
    y = comp.decompress(payload, ctx)
    assert torch.equal(y[mask], x[mask])
    assert torch.count_nonzero(y[~mask]) == 0


@pytest.mark.parametrize("seed", range(5))
def test_topk_with_many_ties_matches_stable_oracle(seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(-3, 4, (500,), generator=gen).float()  # heavy ties in |x|
    comp = create("topk", ratio=0.13)
    k = comp.sparsifier.k(500)
    assert torch.equal(comp.sparsifier.select(x, None), topk_oracle(x, k))


@pytest.mark.parametrize("fill", [0.0, 1.5, -2.0])
def test_topk_ties_go_to_lowest_indices_constant_input(fill):
    x = torch.full((10,), fill)
    comp = create("topk", ratio=0.3)
    assert comp.sparsifier.select(x, None).tolist() == [0, 1, 2]


def test_topk_ties_mixed_and_signed():
    comp = create("topk", ratio=2 / 6)  # k = 2 of 6
    x = torch.tensor([1.0, 5.0, -5.0, 5.0, 2.0, 5.0])
    assert comp.sparsifier.select(x, None).tolist() == [1, 2]
    x = torch.tensor([-5.0, 1.0, 5.0, 5.0, 0.0, 0.0])
    assert comp.sparsifier.select(x, None).tolist() == [0, 2]


@pytest.mark.parametrize("ratio,d,k", [
    (0.25, 10, 3),        # ceil(2.5)
    (0.5, 4, 2),
    (0.01, 1000, 10),
    (0.01, 1001, 11),     # ceil(10.01)
    (1e-6, 10, 1),        # clamped up to 1
    (1.0, 7, 7),
    (0.999, 7, 7),
    (0.01, 2**20, 10486),
    (0.001, 2**20, 1049),
    (0.5, 1, 1),
])
def test_k_is_ceil_ratio_d_clamped(ratio, d, k):
    for name in ("topk", "randk", "topk+sign", "randk+qsgd"):
        assert create(name, ratio=ratio).sparsifier.k(d) == k


@pytest.mark.parametrize("name", ["topk", "randk"])
@pytest.mark.parametrize("shape", [(1,), (17,), (4, 5, 6)])
def test_ratio_one_is_lossless(name, shape):
    comp = create(name, ratio=1.0)
    x = randn(*shape, seed=3)
    payload, ctx = comp.compress(x, seed=11)
    assert torch.equal(comp.decompress(payload, ctx), x)


def test_topk_payload_indices_are_ascending_and_packed():
    d = 5000
    comp = create("topk", ratio=0.01)
    x = randn(d, seed=4)
    payload, ctx = comp.compress(x)
    k = comp.sparsifier.k(d)
    values, packed_idx = comp.parts(payload, d)
    assert values.dtype == torch.float32 and values.numel() == k
    assert packed_idx.numel() == packed_nbytes(k, ceil_log2(d))
    indices, vals = comp.decode_sparse(comp.parts(payload, d), d, None)
    assert torch.equal(indices, topk_oracle(x, k))
    assert torch.all(indices[1:] > indices[:-1])
    assert torch.equal(vals, x[indices])


# --- Rand_k -----------------------------------------------------------------------------------

def test_randk_same_seed_same_indices_in_process():
    comp = create("randk", ratio=0.05)
    a = comp.sparsifier.indices_from_seed(1000, 42, "cpu")
    b = comp.sparsifier.indices_from_seed(1000, 42, "cpu")
    assert torch.equal(a, b)
    assert a.numel() == 50
    assert torch.unique(a).numel() == 50  # without replacement
    assert torch.all(a[1:] > a[:-1]) and a.min() >= 0 and a.max() < 1000
    # compress with the same seed uses those very indices, independent of the values
    x1, x2 = randn(1000, seed=1), randn(1000, seed=2)
    y1 = comp.decompress(*comp.compress(x1, seed=42))
    y2 = comp.decompress(*comp.compress(x2, seed=42))
    assert torch.equal(torch.nonzero(y1).reshape(-1), a)
    assert torch.equal(torch.nonzero(y2).reshape(-1), a)
    assert torch.equal(y1[a], x1[a])


def test_randk_different_seeds_different_indices():
    comp = create("randk", ratio=0.01)
    sets = {tuple(comp.sparsifier.indices_from_seed(1000, s, "cpu").tolist()) for s in range(20)}
    assert len(sets) == 20


_RANK_SCRIPT = r"""
import json, sys, torch
from hvd_qsparse.compression import create
seed = int(sys.argv[1])
comp = create("randk", ratio=0.01)
idx = comp.sparsifier.indices_from_seed(100000, seed, "cpu")
x = torch.arange(100000, dtype=torch.float32) * 0.5 + 1.0
payload, ctx = comp.compress(x, seed=seed)
qsgd = create("topk+qsgd", ratio=0.01, levels=4)
qpayload, _ = qsgd.compress(x, seed=seed, stream=3)  # rounding noise from (seed, stream)
json.dump({"indices": idx.tolist(), "payload": bytes(payload.numpy().tobytes()).hex(),
           "qsgd": bytes(qpayload.numpy().tobytes()).hex()}, sys.stdout)
"""


def test_randk_same_indices_across_processes():
    """Two 'ranks' (separate interpreters, hash salts differ) that share a seed pick the same
    coordinates, and a payload made in one decodes in another (here: in this test process)."""
    env = dict(subprocess_env(), PYTHONHASHSEED="random")
    procs = [subprocess.Popen([sys.executable, "-c", _RANK_SCRIPT, "123456789"], env=env, cwd=REPO_ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    assert results[0]["indices"] == results[1]["indices"]
    assert results[0]["payload"] == results[1]["payload"]
    # stochastic rounding noise derived from (seed, stream) agrees across processes too
    assert results[0]["qsgd"] == results[1]["qsgd"]
    comp = create("randk", ratio=0.01)
    here = comp.sparsifier.indices_from_seed(100000, 123456789, "cpu")
    assert here.tolist() == results[0]["indices"]
    # decode rank A's payload here (rank B): the values land on the shared indices
    x = torch.arange(100000, dtype=torch.float32) * 0.5 + 1.0
    payload = torch.frombuffer(bytearray.fromhex(results[0]["payload"]), dtype=torch.uint8)
    _, ctx = comp.compress(x, seed=123456789)
    y = comp.decompress(payload, ctx)
    assert torch.equal(y[here], x[here])
    assert torch.count_nonzero(y) == here.numel()
    qsgd = create("topk+qsgd", ratio=0.01, levels=4)
    qpayload, _ = qsgd.compress(x, seed=123456789, stream=3)
    assert bytes(qpayload.numpy().tobytes()).hex() == results[0]["qsgd"]


def test_randk_uniform_coverage():
    """Each coordinate is kept with frequency k/d over many seeds.

    d = 20, k = 5, 4000 seeds: the per-coordinate frequency has std sqrt(.25 * .75 / 4000)
    ~= 0.0068; the tolerance is 0.035 (about 5 standard deviations).
    """
    d, n_seeds = 20, 4000
    comp = create("randk", ratio=0.25)
    k = comp.sparsifier.k(d)
    assert k == 5
    counts = torch.zeros(d)
    for seed in range(n_seeds):
        counts[comp.sparsifier.indices_from_seed(d, seed, "cpu")] += 1
    freq = counts / n_seeds
    assert torch.all((freq - k / d).abs() < 0.035), freq
    # pairs are also uniform-ish: coordinates 0 and 1 together about k(k-1)/(d(d-1)) of the time
    both = sum(1 for seed in range(1000)
               if {0, 1} <= set(comp.sparsifier.indices_from_seed(d, seed, "cpu").tolist()))
    assert abs(both / 1000 - (k * (k - 1)) / (d * (d - 1))) < 0.035


@pytest.mark.parametrize("d,ratio", [(1000, 0.01), (2**16, 0.001), (12345, 0.1)])
def test_randk_never_sends_indices(d, ratio):
    randk, topk = create("randk", ratio=ratio), create("topk", ratio=ratio)
    k = randk.sparsifier.k(d)
    assert randk.layout(d) == [(torch.float32, k)]
    assert randk.payload_nbytes(d) == aligned(4 * k)
    assert topk.payload_nbytes(d) == aligned(4 * k) + aligned(packed_nbytes(k, ceil_log2(d)))
    assert randk.payload_nbytes(d) < topk.payload_nbytes(d)
    payload, _ = randk.compress(randn(d, seed=0), seed=5)
    assert payload.numel() * payload.element_size() == aligned(4 * k)
    for q in ("qsgd", "sign"):
        r, t = create(f"randk+{q}", ratio=ratio), create(f"topk+{q}", ratio=ratio)
        assert t.payload_nbytes(d) - r.payload_nbytes(d) == aligned(packed_nbytes(k, ceil_log2(d)))
    assert randk.analytic_bits(d) == 32 * k
    assert math.isclose(topk.analytic_bits(d) - randk.analytic_bits(d), k * ceil_log2(d))


def test_k_is_not_inflated_by_float_error():
    # 0.07 * 100 == 7.000000000000001 in floating point; ceil would give 8.
    assert create("topk", ratio=0.07).sparsifier.k(100) == 7
    assert create("randk", ratio=0.29).sparsifier.k(100) == 29
