"""A CUDA tensor without the CuPy backend falls back to the reference, and says why."""
import logging

import pytest
import torch

from hvd_qsparse.ops import dispatch


def test_missing_cuda_backend_is_reported(monkeypatch, caplog):
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the CuPy backend may load")
    dispatch._cuda_backend.cache_clear()
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))
    with caplog.at_level(logging.WARNING, logger="hvd_qsparse.ops.dispatch"):
        ops = dispatch.get_ops(torch.zeros(3))
    dispatch._cuda_backend.cache_clear()
    assert ops is dispatch.REFERENCE
    assert dispatch.CUDA_BACKEND_UNAVAILABLE and "ModuleNotFoundError" in dispatch.CUDA_BACKEND_UNAVAILABLE
    assert "torch reference ops" in caplog.text
