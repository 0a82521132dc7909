"""The counter-based draws behind rand-k and QSGD's rounding (``ops.counter_random``): exactly
splitmix64 at counter i, uniforms on a 2^-24 grid, and rand-k uniform and device-independent."""
import torch

from hvd_qsparse.ops import FAST_CPU, REFERENCE
from hvd_qsparse.ops.counter_random import draws, random_keys, uniform

MASK = (1 << 64) - 1


def splitmix64(seed: int, i: int) -> int:
    """The published algorithm in Python integers (no wrap-around questions)."""
    z = (seed + (i + 1) * 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def test_draws_are_splitmix64_at_each_counter():
    for seed in (0, 1, 123456789, (1 << 62) + 5, (1 << 63) - 1):
        got = [int(v) & MASK for v in draws(seed, 300, torch.device("cpu"))]
        assert got == [splitmix64(seed, i) for i in range(300)], seed


def test_uniforms_and_keys_come_from_the_high_bits():
    seed, n = 42, 1000
    u = uniform(seed, n, torch.device("cpu"))
    assert u.dtype == torch.float32 and float(u.min()) >= 0.0 and float(u.max()) < 1.0
    assert torch.equal(u * (1 << 24), (u * (1 << 24)).floor())  # exactly 24 random bits
    assert [int(v) for v in (u * (1 << 24))[:50]] == [splitmix64(seed, i) >> 40 for i in range(50)]
    keys = random_keys(seed, n, torch.device("cpu"))
    assert [int(k) for k in keys[:50]] == [splitmix64(seed, i) >> 33 for i in range(50)]
    assert int(keys.min()) >= 0 and int(keys.max()) < 1 << 31


def test_randk_is_uniform_over_coordinates():
    d, k, trials = 10, 3, 6000
    counts = torch.zeros(d)
    for seed in range(trials):
        indices = REFERENCE.randk_indices(d, k, seed, torch.device("cpu"))
        assert indices.unique().numel() == k and torch.equal(indices, indices.sort().values)
        counts[indices] += 1
    expected = trials * k / d
    # each count is Binomial(trials, k/d): sd ≈ 35.5 here; 5 sd would flag a biased draw
    assert float((counts - expected).abs().max()) < 5 * (trials * (k / d) * (1 - k / d)) ** 0.5


def test_the_fast_cpu_path_draws_the_reference_set():
    d = (1 << 18) + 11
    for k in (1, 97, d // 100, d // 2):
        assert torch.equal(FAST_CPU.randk_indices(d, k, 7, torch.device("cpu")),
                           REFERENCE.randk_indices(d, k, 7, torch.device("cpu"))), k


def test_qsgd_without_a_seed_still_rounds_stochastically():
    torch.manual_seed(0)
    x = torch.randn(4000)
    _, first, _ = REFERENCE.qsgd_encode(x, 4, None)
    _, second, _ = REFERENCE.qsgd_encode(x, 4, None)
    _, third, _ = REFERENCE.qsgd_encode(x, 4, 11)
    _, again, _ = REFERENCE.qsgd_encode(x, 4, 11)
    assert not torch.equal(first, second) and torch.equal(third, again)
