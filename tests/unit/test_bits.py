"""Bits on the wire: real payload sizes against docs/algorithms.md's analytic figures.

Bound used below (per compressor, per tensor): with P the number of payload parts,

    analytic_bits(d) <= real_bits <= analytic_bits(d) + 8 * (4 * P + 1)

i.e. at most 3 padding bytes per part (alignment to 4), at most 1 byte per part for bit packing
(``packed_nbytes`` is never more than one byte above the information content) and one byte of
rounding slack.
"""
import math

import pytest
import torch

from hvd_qsparse.compression import create
from hvd_qsparse.ops import aligned, ceil_log2

from ._helpers import ALL_NAMES, make, payload_bytes, randn

SIZES = [1, 2, 7, 9, 1000, 4099, 65537]
CONFIGS = [(0.01, 256), (0.3, 1), (0.5, 7)]


def table_bits(name, d, ratio, levels):
    """The bit column of docs/algorithms.md's operator table, written out independently."""
    k = min(d, max(1, math.ceil(ratio * d)))
    quant = {
        "none": lambda n: 32 * n,
        "fp16": lambda n: 16 * n,
        "qsgd": lambda n: 32 + n * (1 + math.ceil(math.log2(levels + 1))),
        "sign": lambda n: 32 + n,
        "bsign": lambda n: 32 * math.ceil(n / 64) + n,
    }
    if name in quant:
        return quant[name](d)
    sparsifier, _, q = name.partition("+")
    index_bits = k * max(1, math.ceil(math.log2(d))) if sparsifier == "topk" else 0
    return index_bits + quant[q or "none"](k)


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("ratio,levels", CONFIGS)
def test_analytic_bits_match_table(name, ratio, levels):
    comp = make(name, ratio=ratio, levels=levels)
    for d in SIZES + [2**20]:
        assert comp.analytic_bits(d) == table_bits(name, d, ratio, levels), d


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("ratio,levels", CONFIGS)
def test_real_bits_close_to_analytic(name, ratio, levels):
    comp = make(name, ratio=ratio, levels=levels)
    for d in SIZES:
        payload, ctx = comp.compress(randn(d, seed=d), seed=1)
        real_bits = payload_bytes(payload) * 8
        analytic = comp.analytic_bits(d)
        n_parts = len(comp.layout(d))
        assert analytic <= real_bits <= analytic + 8 * (4 * n_parts + 1), (d, real_bits, analytic)
        # payload_nbytes is the payload's size once padded to the alignment
        assert comp.payload_nbytes(d) == aligned(payload_bytes(payload)), d
        # and the payload's layout describes its bytes
        assert sum(aligned(c * torch.empty(0, dtype=t).element_size())
                   for t, c in comp.layout(d)) == comp.payload_nbytes(d)


def test_non_summable_payload_is_already_aligned():
    for name in ALL_NAMES:
        comp = make(name, ratio=0.1, levels=5)
        if comp.summable:
            continue
        for d in (3, 17, 1001):
            payload, _ = comp.compress(randn(d), seed=0)
            assert payload_bytes(payload) == comp.payload_nbytes(d)


@pytest.mark.parametrize("ratio,fraction,k", [(0.001, 500, 1049), (0.01, 150, 10486)])
def test_topk_sign_far_under_dense(ratio, fraction, k):
    d = 2**20
    comp = create("topk+sign", ratio=ratio)
    payload, _ = comp.compress(randn(d, seed=0))
    assert payload_bytes(payload) * 8 < 32 * d / fraction
    # k entries: 20 index bits + 1 sign bit each, plus one fp32 scale
    assert comp.analytic_bits(d) == k * 21 + 32


def test_sign_and_qsgd_pack_signs_not_bytes():
    """A byte per sign would be a defect (docs/algorithms.md): 1 bit per sign, ceil(log2(s+1)) per level."""
    d = 80000
    assert payload_bytes(create("sign").compress(randn(d))[0]) == 4 + d // 8
    payload, _ = create("qsgd", levels=1).compress(randn(d), seed=0)
    assert payload_bytes(payload) == 4 + d * 2 // 8
    payload, _ = create("topk", ratio=0.01).compress(randn(d))
    k = 800
    assert payload_bytes(payload) == 4 * k + aligned(k * ceil_log2(d) // 8)
