"""Block-scaled sign (``bsign``): its per-block error, its payload, its limits and bad input."""
import pytest
import torch

from hvd_qsparse.compression import create
from hvd_qsparse.ops import layout_nbytes

from ._helpers import randn


def roundtrip(comp, x):
    return comp.decompress(*comp.compress(x, seed=None)).double()


@pytest.mark.parametrize("d,block", [(1, 64), (10, 3), (1000, 64), (129, 64), (4096, 7)])
def test_error_is_exact_per_block(d, block):
    """Each block B contributes exactly ||x_B||^2 - ||x_B||_1^2 / |B| (scaled sign on the block)."""
    comp = create("bsign", block=block)
    x = randn(d, seed=d) ** 3
    xd, y = x.double(), roundtrip(comp, x)
    expected = 0.0
    for start in range(0, d, block):
        b = xd[start:start + block]
        expected += b.pow(2).sum().item() - b.abs().sum().item() ** 2 / b.numel()
        scale = b.abs().mean().item()
        assert torch.allclose(y[start:start + block].abs(), torch.full_like(b, scale), rtol=1e-6)
    err = (xd - y).pow(2).sum().item()
    assert abs(err - expected) <= 1e-5 * xd.pow(2).sum().item()
    assert err <= (1 - 1 / min(block, d)) * xd.pow(2).sum().item() * (1 + 1e-5)


def test_one_block_is_scaled_sign_and_block_one_is_lossless():
    x = randn(300, seed=3)
    assert torch.equal(roundtrip(create("bsign", block=300), x), roundtrip(create("sign"), x))
    assert torch.equal(roundtrip(create("bsign", block=1), x), x.double())


def test_signs_and_zeros():
    x = torch.tensor([0.0, -2.0, 3.0, 0.0, 0.0, 0.0])
    y = roundtrip(create("bsign", block=3), x)
    assert torch.equal(y.sign()[1:3], torch.tensor([-1.0, 1.0], dtype=torch.float64))
    assert torch.equal(y[3:], torch.zeros(3, dtype=torch.float64))  # an all-zero block stays zero


@pytest.mark.parametrize("d,block", [(1, 64), (1000, 64), (1001, 10)])
def test_payload_is_the_layout_and_the_bits(d, block):
    comp = create("bsign", block=block)
    payload, _ = comp.compress(randn(d, seed=1), seed=None)
    blocks = -(-d // block)
    assert payload.dtype == torch.uint8
    assert comp.layout(d) == [(torch.float32, blocks), (torch.uint8, -(-d // 8))]
    assert payload.numel() == comp.payload_nbytes(d) == layout_nbytes(comp.layout(d))
    assert comp.analytic_bits(d) == 32 * blocks + d


def test_topk_bsign_beats_one_scale_on_mixed_magnitudes():
    """Kept values from two tensors a thousand-fold apart: one scale misstates both, blocks do not."""
    x = torch.cat([randn(5000, seed=1) * 1e-3, randn(5000, seed=2)])
    x[1::2] = 0.0  # top-k at ratio 0.5 keeps exactly the nonzero half of both tensors
    one, blocked_comp = create("topk+sign", ratio=0.5), create("topk+bsign", ratio=0.5)
    big, blocked = roundtrip(one, x), roundtrip(blocked_comp, x)
    assert torch.equal(big != 0, x != 0) and torch.equal(blocked != 0, x != 0)
    # kept values 0..2495 (x[:4992]) fill 39 blocks of the small tensor; block 40 straddles both
    xd, small = x.double(), slice(0, 4992)
    assert (xd - blocked)[small].abs().max() < 1e-2  # the small tensor keeps its own scale
    assert (xd - big)[small].abs().max() > 0.1  # one scale lifts it ~100-fold
    assert (xd - blocked).pow(2).sum() < (xd - big).pow(2).sum()


@pytest.mark.parametrize("block", [0, -1, 2.5, "64"])
def test_bad_block_is_refused(block):
    with pytest.raises((ValueError, TypeError), match="block"):
        create("bsign", block=block)
