"""The convex job's problem (float64 optimum, gradient, shards) and its flags, in one process."""
import pytest
import torch

from hvd_qsparse.jobs import convex
from hvd_qsparse.workloads.logistic import check_dataset, load_problem


@pytest.fixture(scope="module")
def cancer():
    return load_problem("breast_cancer", 1e-2, ranks=3, seed=1)


def test_gradient_matches_autograd(cancer):
    w = torch.randn(cancer.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.1
    w.requires_grad_(True)
    cancer.loss(w).backward()
    assert torch.allclose(cancer.gradient(w), w.grad, atol=1e-12)


def test_optimum_is_stationary_and_below_other_points(cancer):
    f_star, w_star = cancer.optimum()
    assert float(cancer.gradient(w_star).abs().max()) < 1e-12
    for scale in (1e-3, 1e-2):
        assert cancer.objective(w_star + scale * torch.ones_like(w_star)) > f_star


def test_shards_are_equal_blocks_whose_losses_average_to_f(cancer):
    assert len(cancer.x) % 3 == 0
    w = torch.full(cancer.shape, 0.05, dtype=torch.float64)
    shards = [cancer.shard(r, 3) for r in range(3)]
    assert all(len(s.x) == len(cancer.x) // 3 for s in shards)
    assert abs(sum(s.objective(w) for s in shards) / 3 - cancer.objective(w)) < 1e-12


def test_smoothness_bounds_the_curvature(cancer):
    # The Hessian at W = 0 has the largest curvature of the logistic term: XᵀX/(4n) + λ.
    hessian = cancer.x.t() @ cancer.x / (4 * len(cancer.x)) + cancer.l2 * torch.eye(cancer.x.shape[1],
                                                                                        dtype=torch.float64)
    assert abs(float(torch.linalg.eigvalsh(hessian).max()) - cancer.smoothness()) < 1e-9


def test_digits_is_one_vs_rest_with_a_bias_column():
    problem = load_problem("digits", 1e-3)
    assert problem.shape == (10, 65)
    assert torch.all(problem.x[:, -1] == 1) and torch.all((problem.y == 1).sum(1) == 1)


def test_fitted_rate_of_a_geometric_sequence():
    assert abs(convex.fitted_rate([0.5 * 0.97 ** k for k in range(400)]) - 0.97) < 1e-9


@pytest.mark.parametrize("flags,needle", [
    (["--l2", "0"], "--l2 must be > 0"), (["--lr-scale", "2"], "--lr-scale must be in (0, 2)"),
    (["--xi", "-1"], "--xi must be a finite number >= 0"), (["--beta", "0"], "--beta must be a number in (0, 1]"),
    (["--xi-grid", "1,x"], "--xi-grid must be comma-separated numbers"),
    (["--beta-grid", "1,2"], "--beta-grid must be a number in (0, 1]"), (["--dataset", "iris"], "invalid choice"),
    (["--max-steps", "0"], "--max-steps must be >= 1"),
])
def test_bad_convex_flags_exit_naming_the_flag(capsys, flags, needle):
    with pytest.raises(SystemExit) as exc:
        convex.parse_args(flags)
    assert exc.value.code == 2 and needle in capsys.readouterr().err


@pytest.mark.parametrize("flags,needle", [(["--xi", "-2"], "--xi must be"), (["--beta", "1.5"], "--beta must be"),
                                          (["--warmup-steps", "3"], "--warmup-steps must be 0 with gdsec")])
def test_bad_training_job_flags_exit_naming_the_flag(capsys, flags, needle):
    from hvd_qsparse.jobs.train import parse_args
    with pytest.raises(SystemExit) as exc:
        parse_args(["--algorithm", "gdsec", *flags])
    assert exc.value.code == 2 and needle in capsys.readouterr().err


def test_unknown_dataset_lists_the_accepted_ones():
    with pytest.raises(ValueError, match="digits, breast_cancer"):
        check_dataset("iris")
