"""Finite input gives a finite payload: no compressor overflows or underflows into NaN/Inf,
at ±1e38, at float32's largest value, at subnormals, or with both in one tensor."""
import pytest
import torch

from hvd_qsparse.compression import ThresholdSparsifier, available, create
from hvd_qsparse.error_feedback import ErrorFeedback

D = 1000
MAX = torch.finfo(torch.float32).max
SIGNS = torch.tensor([1.0, -1.0]).repeat(D // 2)


def cases():
    gen = torch.Generator().manual_seed(0)
    noise = torch.rand(D, generator=gen) + 0.5
    return {
        "±1e38, mean 0": SIGNS * 1e38,
        "float32 max, one sign": torch.full((D,), MAX),
        "±1e38 with noise": SIGNS * noise * 1e38,
        "subnormal": SIGNS * 1e-40,
        "subnormal and huge": torch.where(torch.arange(D) % 3 == 0, SIGNS * 3e38, SIGNS * 1e-42),
        "one huge among zeros": torch.zeros(D).index_fill_(0, torch.tensor([7]), -2e38),
    }


def compressors():
    return [(name, create(name, ratio=0.1, levels=4)) for name in available()] + \
           [("threshold", ThresholdSparsifier(torch.full((D,), 1e-43)))]


@pytest.mark.parametrize("case", list(cases()))
@pytest.mark.parametrize("name,comp", compressors())
def test_finite_in_finite_out(name, comp, case):
    x = cases()[case]
    payload, ctx, selection = comp.compress_selected(x, seed=3, stream=1)
    decoded = comp.decompress(payload, ctx)
    assert torch.isfinite(decoded).all(), f"{name} on {case}: {int((~torch.isfinite(decoded)).sum())} non-finite"
    assert torch.equal(selection.dense(D), decoded.reshape(-1).float())
    assert bool((decoded * x >= 0).all()), f"{name} on {case}: a decoded entry has the wrong sign"
    if name not in ("fp16", "threshold") and not name.startswith("randk"):  # these may drop everything here
        assert decoded.abs().max() > 0 or x.abs().max() < 1e-37, f"{name} on {case}: all magnitude lost"


@pytest.mark.parametrize("case", list(cases()))
@pytest.mark.parametrize("name,comp", compressors())
def test_error_feedback_memory_stays_finite(name, comp, case):
    ef = ErrorFeedback()
    ef.compress("w", cases()[case], comp, seed=3)
    assert torch.isfinite(ef.memory["w"]).all(), f"{name} on {case}"


def test_fp16_saturates_finite_values_and_keeps_the_rest_in_memory():
    comp, ef = create("fp16"), ErrorFeedback()
    x = torch.tensor([1e5, -7e4, 3.0, 65504.0])
    payload, _, _ = ef.compress("w", x, comp)
    assert payload.tolist() == [65504.0, -65504.0, 3.0, 65504.0]
    assert torch.allclose(ef.memory["w"], torch.tensor([1e5 - 65504, -7e4 + 65504, 0.0, 0.0]))


def test_fp16_still_carries_nan_and_inf():
    payload, _ = create("fp16").compress(torch.tensor([float("inf"), float("nan"), 1.0]), check_finite=False)
    assert payload[0] == float("inf") and torch.isnan(payload[1]) and payload[2] == 1.0


def test_qsgd_norm_beyond_float32_scales_down_and_stays_a_contraction():
    comp = create("qsgd", levels=16)
    x = torch.full((D,), MAX)
    payload, ctx = comp.compress(x, seed=1)
    decoded = comp.decompress(payload, ctx)
    assert torch.isfinite(decoded).all() and (decoded >= 0).all() and decoded.max() > 0
    assert (x - decoded).double().norm() < x.double().norm()
