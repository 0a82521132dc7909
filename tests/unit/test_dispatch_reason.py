"""Which backend a tensor gets: CUDA tensors stay on the torch reference until the kernels are
verified or asked for; a kernel backend that cannot load falls back and says why."""
import logging

import pytest
import torch

from hvd_qsparse.ops import dispatch


@pytest.fixture
def pretend_cuda(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the CuPy backend may load")
    dispatch._cuda_backend.cache_clear()
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))
    yield
    dispatch._cuda_backend.cache_clear()


def test_unverified_kernels_are_not_used_by_default(pretend_cuda, monkeypatch):
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    assert dispatch.KERNELS_VERIFIED_ON is None
    assert dispatch.get_ops(torch.zeros(3)) is dispatch.REFERENCE
    assert dispatch._cuda_backend.cache_info().currsize == 0  # not even tried


def test_asked_for_kernels_that_cannot_load_fall_back_and_say_why(pretend_cuda, monkeypatch, caplog):
    monkeypatch.setenv(dispatch.ENV_VAR, "cupy")
    with caplog.at_level(logging.WARNING, logger="hvd_qsparse.ops.dispatch"):
        ops = dispatch.get_ops(torch.zeros(3))
    assert ops is dispatch.REFERENCE
    assert dispatch.CUDA_BACKEND_UNAVAILABLE
    assert "torch reference ops" in caplog.text and dispatch.CUDA_BACKEND_UNAVAILABLE in caplog.text


def test_cpu_tensors_get_the_fast_cpu_path_unless_the_reference_is_forced(monkeypatch):
    monkeypatch.setenv(dispatch.ENV_VAR, "cupy")
    assert dispatch.get_ops(torch.zeros(3)) is dispatch.FAST_CPU
    monkeypatch.setenv(dispatch.ENV_VAR, "Reference")
    assert dispatch.get_ops(torch.zeros(3)) is dispatch.REFERENCE


def test_an_unknown_backend_is_refused_by_name(monkeypatch):
    monkeypatch.setenv(dispatch.ENV_VAR, "triton")
    with pytest.raises(ValueError, match="HVD_QSPARSE_OPS='triton' is not a backend; accepted: auto, reference"):
        dispatch.get_ops(torch.zeros(3))
