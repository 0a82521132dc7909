"""Compressing decodes nothing on the sender: error feedback and the algorithms use the
selection the encoder computed (``ops.Selection``), never a decode of their own payload."""
import pytest
import torch

from hvd_qsparse.compression import Compressor, SparseCompressor, ThresholdSparsifier, available, create
from hvd_qsparse.error_feedback import ErrorFeedback
from hvd_qsparse.ops import TorchOps

from ._helpers import randn

#: every way into a payload's contents: the framing split, the per-operator decoders, the ops' unpackers
DECODERS = [(Compressor, "parts"), (Compressor, "decompress"), (Compressor, "decompress_sum"),
            (SparseCompressor, "decode_sparse"), (TorchOps, "qsgd_decode"), (TorchOps, "sign_decode")]


@pytest.fixture
def decodes(monkeypatch):
    """A list that records every decode call made while the test runs."""
    calls = []
    classes = {type(create(name, ratio=0.1, levels=4)) for name in available()} | {ThresholdSparsifier}
    targets = DECODERS + [(cls, "decode") for cls in classes]
    for cls, attr in targets:
        original = getattr(cls, attr)

        def counting(*args, _original=original, _label=f"{cls.__name__}.{attr}", **kwargs):
            calls.append(_label)
            return _original(*args, **kwargs)
        monkeypatch.setattr(cls, attr, counting)
    return calls


def compressors():
    return [(name, create(name, ratio=0.1, levels=4)) for name in available()] + \
           [("threshold", ThresholdSparsifier(torch.full((6, 50), 0.5)))]


@pytest.mark.parametrize("name,comp", compressors())
def test_error_feedback_compress_decodes_nothing(decodes, name, comp):
    ef = ErrorFeedback()
    for step in range(3):
        payload, ctx, selection = ef.compress("w", randn(6, 50, seed=step), comp, seed=step, stream=1)
    finite = ef.compress_finite("w", randn(6, 50, seed=9), comp, seed=9)
    nan = ef.compress_finite("w", torch.full((6, 50), float("nan")), comp, seed=10)
    assert decodes == [], f"{name}: the sender decoded ({decodes})"
    assert finite.finite and not nan.finite
    # the counter works: decoding on the receiving side is seen
    comp.decompress(payload, ctx)
    assert decodes, f"{name}: the decode counter saw nothing"


@pytest.mark.parametrize("name,comp", compressors())
def test_selection_is_what_the_receivers_decode(name, comp):
    """What the sender applies to itself is bit for bit what every receiver decodes."""
    payload, ctx, selection = comp.compress_selected(randn(6, 50, seed=3), seed=3, stream=2)
    assert torch.equal(selection.dense(ctx.numel), comp.decompress(payload, ctx).reshape(-1).float())


def test_horovod_style_compress_decodes_nothing(decodes):
    for name in available():
        create(name, ratio=0.1, levels=4).compress(randn(300, seed=1), seed=1)
    assert decodes == []
