"""GD-SEC's state object and flags: validation naming the parameter, thresholds, checkpoints."""
import math

import pytest
import torch

from hvd_qsparse.algorithms.gdsec_state import GdsecState
from hvd_qsparse.validation import check_beta, check_density, check_xi


@pytest.mark.parametrize("beta", [0, 0.0, -0.5, 1.01, float("nan"), "1", True, None])
def test_bad_beta_names_parameter_and_range(beta):
    with pytest.raises(ValueError) as err:
        GdsecState(beta=beta)
    assert "beta" in str(err.value) and "(0, 1]" in str(err.value) and repr(beta) in str(err.value)


@pytest.mark.parametrize("xi", [-1, -1e-9, float("inf"), float("nan"), "2", False, None])
def test_bad_xi_names_parameter_and_range(xi):
    with pytest.raises(ValueError) as err:
        GdsecState(xi=xi)
    assert "xi" in str(err.value) and ">= 0" in str(err.value) and repr(xi) in str(err.value)


def test_flag_names_in_messages():
    with pytest.raises(ValueError, match="--beta must be"):
        check_beta(2.0, "--beta")
    with pytest.raises(ValueError, match="--xi must be"):
        check_xi(-1.0, "--xi")
    assert check_beta(1) == 1.0 and check_xi(0) == 0.0


def test_threshold_is_zero_first_then_scales_with_the_move():
    state = GdsecState(beta=1.0, xi=3.0)
    param = torch.tensor([1.0, -2.0, 0.5])
    assert torch.equal(state.threshold("w", param, ranks=4), torch.zeros(3))
    moved = param + torch.tensor([0.4, 0.0, -0.8])
    assert torch.allclose(state.threshold("w", moved, ranks=4), 3.0 / 4 * torch.tensor([0.4, 0.0, 0.8]))
    assert torch.equal(state.previous["w"], moved)  # θ^k kept as the next step's θ^{k-1}


def test_state_dict_round_trip_copies():
    state = GdsecState(beta=0.9, xi=1.5)
    like = torch.zeros(4)
    state.g_hat_of("w", like).add_(1.0)
    state.server_view_of("w", like).add_(2.0)
    state.threshold("w", like, ranks=2)
    state.error_feedback.memory["w"] = torch.full((4,), 3.0)
    state.step = 7
    state.bits.record(6, 100, 90, 128)
    saved = state.state_dict()
    state.g_hat["w"].add_(5.0)  # the checkpoint is a copy
    other = GdsecState(beta=0.9, xi=1.5)
    other.load_state_dict(saved)
    assert other.step == 7 and other.bits.total_sent == 100
    assert torch.equal(other.g_hat["w"], torch.ones(4)) and torch.equal(other.server_view["w"], torch.full((4,), 2.0))
    assert torch.equal(other.error_of("w", like), torch.full((4,), 3.0))
    assert torch.equal(other.previous["w"], like)


@pytest.mark.parametrize("density", [0, -0.1, 1.5, float("nan"), "0.1", True, None])
def test_bad_cap_names_parameter_and_range(density):
    with pytest.raises(ValueError) as err:
        GdsecState(max_density=density)
    assert "max_density" in str(err.value) and "(0, 1]" in str(err.value) and repr(density) in str(err.value)
    with pytest.raises(ValueError, match="--max-density must be"):
        check_density(density, "--max-density")


def test_cap_counts_round_as_top_k_and_none_when_uncapped():
    assert GdsecState().max_count(1000) is None
    capped = GdsecState(max_density=0.07)
    assert [capped.max_count(d) for d in (1, 100, 101)] == [1, 7, 8]


def test_a_checkpoint_from_before_caps_loads_uncapped_only():
    saved = GdsecState(beta=0.9).state_dict()
    del saved["max_density"]
    GdsecState(beta=0.9).load_state_dict(saved)
    with pytest.raises(ValueError, match="max_density=1.0"):
        GdsecState(beta=0.9, max_density=0.1).load_state_dict(saved)


def test_without_error_correction_there_is_no_memory():
    with_correction = GdsecState()
    assert with_correction.memory is with_correction.error_feedback
    state = GdsecState(error_correction=False)
    assert state.memory is None and state.state_dict()["error_correction"] is False
    with pytest.raises(ValueError, match="error_correction must be True or False"):
        GdsecState(error_correction=1)


@pytest.mark.parametrize("key,value", [("beta", 0.5), ("xi", 2.0), ("max_density", 0.1), ("error_correction", False)])
def test_loading_a_checkpoint_of_other_hyperparameters_is_refused(key, value):
    saved = GdsecState(beta=0.9, xi=1.5).state_dict()
    other = GdsecState(**{"beta": 0.9, "xi": 1.5, key: value})
    with pytest.raises(ValueError, match=f"{key}="):
        other.load_state_dict(saved)


def test_error_of_unknown_tensor_is_zero_and_not_stored():
    state = GdsecState()
    assert torch.equal(state.error_of("w", torch.ones(2, 3)), torch.zeros(2, 3))
    assert "w" not in state.error_feedback.memory
    assert math.isclose(state.xi, 0.0) and state.beta == 1.0
