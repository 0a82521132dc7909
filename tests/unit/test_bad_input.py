"""Refused input: every refusal is a ValueError naming the parameter and the accepted values."""
import re

import pytest
import torch

from hvd_qsparse import ErrorFeedback
from hvd_qsparse.compression import QSGDCompressor, available, create

from ._helpers import ALL_NAMES, make, randn

ACCEPTED_DTYPES = ("float16", "bfloat16", "float32", "float64")


@pytest.mark.parametrize("name", ["topk", "randk", "topk+sign", "randk+qsgd"])
@pytest.mark.parametrize("ratio", [0, 0.0, 1.5, -0.1, "a", float("nan"), True, [0.5]])
def test_bad_ratio(name, ratio):
    with pytest.raises(ValueError) as err:
        create(name, ratio=ratio)
    msg = str(err.value)
    assert "ratio" in msg
    assert "(0, 1]" in msg          # the accepted range
    assert repr(ratio) in msg       # the offending value


@pytest.mark.parametrize("name", ["qsgd", "topk+qsgd", "randk+qsgd"])
@pytest.mark.parametrize("levels", [0, -3, 1.5, "8", True])
def test_bad_levels(name, levels):
    with pytest.raises(ValueError) as err:
        create(name, levels=levels)
    msg = str(err.value)
    assert "levels" in msg
    assert ">= 1" in msg and "integer" in msg
    assert repr(levels) in msg


def test_bad_levels_direct_class():
    with pytest.raises(ValueError, match="levels"):
        QSGDCompressor(levels=0)
    with pytest.raises(ValueError, match="levels"):
        QSGDCompressor(levels=2.0)


@pytest.mark.parametrize("bad", ["nope", "", "TOPK", "topk+none", "topk+fp16", "sign+topk", "topk+"])
def test_unknown_name_lists_accepted(bad):
    with pytest.raises(ValueError) as err:
        create(bad)
    msg = str(err.value)
    assert repr(bad) in msg
    assert "accepted" in msg
    for name in available():
        assert re.search(rf"(^|[ ,:]){re.escape(name)}(,|$)", msg), name


@pytest.mark.parametrize("name,accepted", [("topk", ["ratio"]), ("qsgd", ["levels", "unbiased"]),
                                           ("topk+qsgd", ["levels", "ratio", "unbiased"]),
                                           ("sign", [])])
def test_unknown_parameter(name, accepted):
    with pytest.raises(ValueError) as err:
        create(name, foo=1)
    msg = str(err.value)
    assert "foo" in msg
    for param in accepted:
        assert param in msg


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool, torch.complex64],
                         ids=str)
def test_non_float_dtype_refused(name, dtype):
    comp = make(name)
    x = torch.ones(10, dtype=dtype)
    with pytest.raises(ValueError) as err:
        comp.compress(x, seed=1)
    msg = str(err.value)
    assert str(dtype) in msg                     # names the dtype
    for accepted in ACCEPTED_DTYPES:             # and the accepted ones
        assert accepted in msg
    assert name in msg


@pytest.mark.parametrize("name", ALL_NAMES)
def test_non_tensor_refused(name):
    with pytest.raises(ValueError, match="torch.Tensor"):
        make(name).compress([1.0, 2.0], seed=1)


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64], ids=str)
def test_nan_inf_refused(name, bad, dtype):
    x = randn(50, seed=1, dtype=dtype)
    x[17] = bad
    with pytest.raises(ValueError) as err:
        make(name).compress(x, seed=1)
    assert "NaN or Inf" in str(err.value)
    assert "1 of 50" in str(err.value)


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_refused_compression_leaves_memory_bit_for_bit(name, bad):
    comp = make(name, ratio=0.1, levels=4)
    ef = ErrorFeedback()
    if not comp.summable:  # build a non-trivial existing memory
        ef.compress("w", randn(64, seed=1), comp, seed=1)
    else:
        ef.load_state_dict({"memory": {"w": randn(64, seed=1) * 1e-3}})
    before = ef.memory["w"].clone()
    before_obj = ef.memory["w"]
    value = randn(64, seed=2)
    value[5] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        ef.compress("w", value, comp, seed=2)
    assert ef.memory["w"] is before_obj
    assert torch.equal(ef.memory["w"].view(torch.int32), before.view(torch.int32))  # bit for bit
    # a memory that does not exist yet is not created by a refused step
    with pytest.raises(ValueError, match="NaN or Inf"):
        ef.compress("fresh", value, comp, seed=2)
    assert "fresh" not in ef.memory
    assert set(ef.memory) == {"w"}


def test_refused_by_memory_overflow_keeps_memory():
    """A finite fp64 value that overflows fp32 once compensated is refused, memory untouched."""
    comp = create("topk", ratio=0.5)
    ef = ErrorFeedback()
    ef.compress("w", randn(8, seed=1), comp)
    before = ef.memory["w"].clone()
    value = randn(8, seed=2, dtype=torch.float64)
    value[0] = 1e300
    with pytest.raises(ValueError):
        ef.compress("w", value, comp)
    assert torch.equal(ef.memory["w"].view(torch.int32), before.view(torch.int32))


@pytest.mark.parametrize("name", ["randk", "randk+sign", "randk+qsgd"])
def test_randk_without_seed_raises(name):
    comp = make(name)
    with pytest.raises(ValueError, match="seed"):
        comp.compress(randn(100, seed=0))
    with pytest.raises(ValueError, match="seed"):
        comp.compress(randn(100, seed=0), seed=None)
    # decoding with a context that lost the seed is refused too
    payload, ctx = comp.compress(randn(100, seed=0), seed=3)
    with pytest.raises(ValueError, match="seed"):
        comp.decompress(payload, ctx._replace(seed=None))
    # and error feedback keeps no memory for it
    ef = ErrorFeedback()
    with pytest.raises(ValueError, match="seed"):
        ef.compress("w", randn(100, seed=0), comp)
    assert ef.memory == {}


def test_wrong_payload_size_refused():
    comp = create("topk+sign", ratio=0.1)
    payload, ctx = comp.compress(randn(1000, seed=0))
    with pytest.raises(ValueError, match="bytes"):
        comp.decompress(payload[:-4], ctx)


def test_pack_bits_refuses_values_out_of_range():
    from hvd_qsparse.ops import pack_bits
    with pytest.raises(ValueError, match=r"\[0, 2\*\*2\)"):
        pack_bits(torch.tensor([4, 1]), 2)
    with pytest.raises(ValueError, match="values must lie"):
        pack_bits(torch.tensor([-1]), 3)


def test_error_feedback_refuses_integer_tensor_and_keeps_memory():
    from hvd_qsparse.error_feedback import ErrorFeedback
    ef = ErrorFeedback()
    with pytest.raises(ValueError, match="int64.*accepted dtypes"):
        ef.compress("w", torch.arange(10), create("topk", ratio=0.5))
    assert ef.memory == {}


def test_finite_values_whose_sum_overflows_are_accepted():
    """The cheap sum check overflows to Inf here; the exact check must still accept the input."""
    from hvd_qsparse.compression import create
    x = torch.full((4,), 3.0e38)
    payload, ctx = create("topk", ratio=0.5).compress(x, seed=0)
    assert torch.isfinite(create("topk", ratio=0.5).decompress(payload, ctx)).all()
