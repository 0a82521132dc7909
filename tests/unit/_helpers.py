"""Shared helpers for the single-process unit tests of hvd_qsparse (imported relatively)."""
import torch

from hvd_qsparse.compression import available, create

ALL_NAMES = available()
SUMMABLE = [n for n in ALL_NAMES if create(n).summable]
NON_SUMMABLE = [n for n in ALL_NAMES if not create(n).summable]
EXPECTED_NAMES = {"none", "fp16", "qsgd", "sign", "bsign", "topk", "randk",
                  "topk+qsgd", "topk+sign", "topk+bsign", "randk+qsgd", "randk+sign", "randk+bsign"}


def make(name, ratio=0.1, levels=16, **extra):
    """``create`` with the CLI-style shared parameters (ignored by parts that take neither)."""
    return create(name, ratio=ratio, levels=levels, **extra)


def randn(*shape, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=torch.float64).to(dtype)


def payload_bytes(payload):
    return payload.numel() * payload.element_size()


REPO_ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def subprocess_env():
    """Environment for a child interpreter that imports this checkout of hvd_qsparse."""
    import os
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def dense_of(selection, like):
    """The dense tensor (``like``'s shape, fp32) an ``ops.Selection`` stands for."""
    return selection.dense(like.numel()).view(like.shape)
