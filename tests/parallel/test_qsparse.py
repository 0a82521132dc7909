"""Synchronous Qsparse-local-SGD under real ranks."""
import pytest
import torch

pytestmark = pytest.mark.timeout(300)


def test_identity_h1_matches_stock_horovod(ranks):
    assert ranks("identity_matches_horovod.py", np=2).count(": OK") == 2


@pytest.mark.parametrize("compressor,local_steps,warmup", [
    ("topk+sign", 3, 0), ("topk+qsgd", 4, 2), ("randk", 1, 0), ("sign", 1, 3),
])
def test_local_steps_silent_and_syncs_agree(ranks, compressor, local_steps, warmup):
    out = ranks("sync_schedule.py", np=2, args=(compressor, local_steps, warmup))
    assert out.count(": OK") == 2


@pytest.mark.parametrize("compressor,local_steps", [("topk+qsgd", 3), ("randk+sign", 1), ("topk+bsign", 1)])
def test_resume_continues_exactly(ranks, tmp_path, compressor, local_steps):
    full, ckpt, resumed = tmp_path / "full", tmp_path / "ckpt", tmp_path / "resumed"
    ranks("resume.py", np=2, args=(compressor, local_steps, "full", 12, full))
    ranks("resume.py", np=2, args=(compressor, local_steps, "part", 7, ckpt))
    ranks("resume.py", np=2, args=(compressor, local_steps, "resume", ckpt, 5, resumed))
    for rank in range(2):
        a, b = torch.load(f"{full}.{rank}"), torch.load(f"{resumed}.{rank}")
        assert torch.allclose(a, b, rtol=0, atol=1e-6), f"rank {rank}: max diff {(a - b).abs().max()}"
