"""GD-SEC's threshold payload: selection, exact round trip, sizes, count from size, bad bytes."""
import pytest
import torch

from hvd_qsparse import ErrorFeedback
from hvd_qsparse.compression import ThresholdSparsifier
from hvd_qsparse.ops import aligned, ceil_log2, packed_nbytes

from ._helpers import randn


def nbytes(k, d):
    return 4 * k + aligned(packed_nbytes(k, ceil_log2(d)))


@pytest.mark.parametrize("d", [1, 7, 256, 257, 650, 70000])
def test_keeps_exactly_the_entries_above_their_threshold(d):
    x = randn(d, seed=d)
    threshold = randn(d, seed=d + 1).abs()
    codec = ThresholdSparsifier(threshold)
    payload, ctx = codec.compress(x, seed=0)
    keep = x.abs() > threshold
    assert payload.dtype == torch.uint8 and payload.numel() == nbytes(int(keep.sum()), d)
    assert torch.equal(codec.decompress(payload, ctx), torch.where(keep, x, torch.zeros_like(x)))  # bit for bit
    assert ThresholdSparsifier().count(payload, d) == int(keep.sum())


@pytest.mark.parametrize("d", [1, 2, 9, 255, 256, 257, 1000, 1025])
def test_count_read_back_from_size_for_every_k(d):
    decoder = ThresholdSparsifier()
    for k in range(d + 1):
        payload = torch.zeros(nbytes(k, d), dtype=torch.uint8)
        assert decoder.count(payload, d) == k


def test_no_threshold_keeps_every_nonzero_entry():
    x = torch.tensor([0.0, 1.5, 0.0, -2.0, 1e-30])
    payload, ctx = ThresholdSparsifier().compress(x)
    assert ThresholdSparsifier().count(payload, 5) == 3
    assert torch.equal(ThresholdSparsifier().decompress(payload, ctx), x)


def test_nothing_selected_is_an_empty_payload():
    x = randn(3, 40, seed=1)
    payload, ctx = ThresholdSparsifier(torch.full((3, 40), 1e9)).compress(x)
    assert payload.numel() == 0
    assert torch.equal(ThresholdSparsifier().decompress(payload, ctx), torch.zeros(3, 40))


def test_decompress_sum_of_several_ranks():
    d = 300
    xs = [randn(d, seed=s) for s in range(3)]
    pairs = [ThresholdSparsifier(torch.full((d,), 1.0)).compress(x) for x in xs]
    total = ThresholdSparsifier().decompress_sum([p for p, _ in pairs], pairs[0][1])
    expected = sum(torch.where(x.abs() > 1.0, x, torch.zeros_like(x)) for x in xs)
    assert torch.allclose(total, expected, atol=1e-6)


def test_analytic_bits_are_the_topk_formula_with_data_dependent_k():
    assert ThresholdSparsifier.analytic_bits_for(17, 650) == 17 * (10 + 32)
    assert ThresholdSparsifier().analytic_bits(650) == 650 * 42


@pytest.mark.parametrize("size", [1, 3, 5, 7])
def test_a_size_no_count_gives_is_refused(size):
    with pytest.raises(ValueError, match=f"{size} bytes"):
        ThresholdSparsifier().count(torch.zeros(size, dtype=torch.uint8), 650)


def test_nan_refused():
    x = randn(10, seed=2)
    x[3] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        ThresholdSparsifier().compress(x)


def test_error_feedback_invariant_with_thresholds():
    """D(p) + m_new = v + m_old at every step, and the withheld part is exactly the new memory."""
    ef, d = ErrorFeedback(), 500
    for step in range(20):
        v = randn(d, seed=100 + step)
        old = ef.memory.get("w", torch.zeros(d)).clone()
        threshold = torch.full((d,), 1.5)
        _, _, selection = ef.compress("w", v, ThresholdSparsifier(threshold))
        decoded = selection.dense(d)
        assert torch.allclose(decoded + ef.memory["w"], v + old, atol=1e-6)
        withheld = (v + old).abs() <= threshold
        assert torch.equal(ef.memory["w"][withheld], (v + old)[withheld])
        assert torch.all(ef.memory["w"][~withheld] == 0)


@pytest.mark.parametrize("d,cap", [(1, 1), (650, 13), (70000, 700)])
def test_a_cap_keeps_the_largest_passing_entries(d, cap):
    x = randn(d, seed=d)
    threshold = randn(d, seed=d + 1).abs() * 0.5
    passing = x.abs() > threshold
    y = ThresholdSparsifier(threshold, max_count=cap).decompress(*ThresholdSparsifier(threshold, cap).compress(x))
    kept = y != 0
    assert int(kept.sum()) == min(cap, int(passing.sum()))
    assert bool((kept <= passing).all()), "a capped payload sent an entry below its threshold"
    if kept.any() and (passing & ~kept).any():
        assert float(x[kept].abs().min()) >= float(x[passing & ~kept].abs().max())
    assert torch.equal(y[kept], x[kept])


def test_a_cap_above_the_passing_count_changes_nothing_and_ties_go_to_low_indices():
    x = randn(500, seed=3)
    threshold = torch.full((500,), 1.0)
    free, capped = ThresholdSparsifier(threshold), ThresholdSparsifier(threshold, max_count=500)
    assert torch.equal(free.compress(x)[0], capped.compress(x)[0])
    ties = torch.tensor([0.0, 2.0, -2.0, 1.0, 2.0])
    y = ThresholdSparsifier(torch.zeros(5), max_count=2).decompress(*ThresholdSparsifier(torch.zeros(5), 2).compress(ties))
    assert torch.equal(y, torch.tensor([0.0, 2.0, -2.0, 0.0, 0.0]))
