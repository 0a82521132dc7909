"""Adding a compressor is one new file: ``tests/plugins/ternary.py`` registers one, and nothing
else is edited. Dropped into the compression package it is found (``discover``); composed with
a sparsifier, checked against the reference contract and run through error feedback. The
parallel test ``test_plugin_compressor`` runs it through every algorithm that takes one."""
import importlib
import shutil
import sys

import pytest
import torch

import hvd_qsparse.compression as compression
from hvd_qsparse.compression import available, create, registry
from hvd_qsparse.error_feedback import ErrorFeedback

from ._helpers import REPO_ROOT, randn

PLUGIN = REPO_ROOT / "tests" / "plugins" / "ternary.py"


@pytest.fixture
def dropped_in(tmp_path, monkeypatch):
    """The plugin file copied into (a second directory of) the compression package."""
    shutil.copy(PLUGIN, tmp_path / "ternary_dropped.py")
    monkeypatch.setattr(compression, "__path__", list(compression.__path__) + [str(tmp_path)])
    saved = dict(registry.QUANTIZERS)
    registry.QUANTIZERS.pop("ternary", None)
    yield
    registry.QUANTIZERS.clear()
    registry.QUANTIZERS.update(saved)
    sys.modules.pop("hvd_qsparse.compression.ternary_dropped", None)


def test_a_file_in_the_package_is_found_without_editing_anything(dropped_in):
    assert "ternary" in available() and "topk+ternary" in available() and "randk+ternary" in available()
    assert type(create("ternary")).__module__ == "hvd_qsparse.compression.ternary_dropped"


@pytest.fixture
def ternary():
    """The plugin imported as a user's own module would be (and unregistered afterwards)."""
    saved = dict(registry.QUANTIZERS)
    sys.path.insert(0, str(PLUGIN.parent))
    try:
        importlib.import_module("ternary")
    finally:
        sys.path.remove(str(PLUGIN.parent))
    yield
    registry.QUANTIZERS.clear()
    registry.QUANTIZERS.update(saved)
    sys.modules.pop("ternary", None)


@pytest.mark.parametrize("name", ["ternary", "topk+ternary", "randk+ternary"])
def test_plugin_keeps_the_compressor_contract(ternary, name):
    comp = create(name, ratio=0.2)
    x = randn(7, 30, seed=1)
    payload, ctx = comp.compress(x, seed=4)
    assert payload.dtype == torch.uint8 and payload.numel() == comp.payload_nbytes(x.numel())
    decoded = comp.decompress(payload, ctx)
    assert decoded.shape == x.shape and ((decoded - x).norm() < x.norm())  # a contraction
    assert comp.analytic_bits(x.numel()) < 32 * x.numel()


def test_plugin_through_error_feedback_loses_nothing(ternary):
    comp, ef = create("topk+ternary", ratio=0.3), ErrorFeedback()
    sent, given = torch.zeros(200, dtype=torch.float64), torch.zeros(200, dtype=torch.float64)
    for step in range(10):
        value = randn(200, seed=step)
        payload, ctx, _ = ef.compress("w", value, comp, seed=step)
        sent += comp.decompress(payload, ctx).double()
        given += value.double()
    assert torch.allclose(sent + ef.memory["w"].double(), given, atol=1e-4)
