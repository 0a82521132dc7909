"""Model-averaging rounds under real ranks: outer optimizer, sync delay, mixing, fragments, resume."""
import pytest
import torch

pytestmark = pytest.mark.timeout(300)


def test_outer_sgd_lr1_and_zero_delay_equal_todays_rule(ranks):
    assert ranks("outer_rounds.py", np=2, args=("equivalence",)).count(": OK") == 2


@pytest.mark.parametrize("tau,alpha,fragments", [(1, 0.0, 1), (3, 0.5, 2), (0, 0.25, 4), (2, 0.0, 3)])
def test_delayed_fragmented_rounds_follow_the_rule(ranks, tau, alpha, fragments):
    out = ranks("outer_rounds.py", np=2, args=("delay", tau, alpha, fragments))
    assert out.count(": OK") == 2


def test_resume_mid_delay_is_exact(ranks, tmp_path):
    full, ckpt, resumed = tmp_path / "full", tmp_path / "ckpt", tmp_path / "resumed"
    ranks("outer_resume.py", np=2, args=("full", 15, full))
    ranks("outer_resume.py", np=2, args=("part", 7, ckpt))
    ranks("outer_resume.py", np=2, args=("resume", ckpt, 8, resumed))
    for rank in range(2):
        a, b = torch.load(f"{full}.{rank}"), torch.load(f"{resumed}.{rank}")
        assert torch.equal(a, b), f"rank {rank}: max diff {(a - b).abs().max()}"
