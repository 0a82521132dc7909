"""The window's layout table and the asynchronous schedule: pure logic, no MPI."""
import pytest
import torch

from hvd_qsparse.algorithms import QsparseAsyncState
from hvd_qsparse.comm import FlatLayout
from hvd_qsparse.compression import create

NAMED = [("a.weight", torch.randn(3, 4)), ("a.bias", torch.randn(3)), ("b", torch.randn(2, 1, 2))]


def test_layout_offsets_flatten_and_views_round_trip():
    layout = FlatLayout.of(NAMED)
    assert layout.numel == 12 + 3 + 4
    assert [layout.offset(n) for n, _ in NAMED] == [0, 12, 15]
    flat = layout.flatten(NAMED)
    views = layout.views(flat)
    for name, tensor in NAMED:
        assert torch.equal(views[name], tensor)
    views["a.bias"].fill_(7)  # views write through to the flat buffer
    assert torch.equal(flat[12:15], torch.full((3,), 7.0))


def test_layout_mismatch_names_the_parameter_and_both_sides():
    layout = FlatLayout.of(NAMED)
    layout.check_matches(layout.signature())
    changed = layout.signature()
    changed[1] = ("a.bias", (4,))
    with pytest.raises(ValueError, match=r"parameter #1 is 'a.bias' \[3\] in here, 'a.bias' \[4\] in there"):
        layout.check_matches(changed, here="here", there="there")
    with pytest.raises(ValueError, match="3 parameters in the model, 2 in the window"):
        layout.check_matches(layout.signature()[:2])
    with pytest.raises(ValueError, match="unique"):
        FlatLayout([("x", (2,)), ("x", (3,))])
    with pytest.raises(ValueError, match="5 entries, the layout needs 19"):
        layout.views(torch.zeros(5))


def state(rank, local_steps=4, **kwargs):
    return QsparseAsyncState(create("topk", ratio=0.1), rank, local_steps, seed=3, **kwargs)


def take_steps(s, steps):
    """Push steps (steps taken at each push) of ``s`` over ``steps`` steps."""
    pushes = []
    for _ in range(steps):
        s.step += 1
        if s.syncs_now():
            s.pushed()
            pushes.append(s.step)
    return pushes


@pytest.mark.parametrize("local_steps", [1, 2, 5, 8])
def test_schedule_gaps_within_half_h_and_h_and_differ_by_rank(local_steps):
    schedules = [take_steps(state(rank, local_steps), 200) for rank in range(4)]
    low = -(-local_steps // 2)
    for pushes in schedules:
        gaps = [b - a for a, b in zip([0] + pushes, pushes)]
        assert all(low <= g <= local_steps for g in gaps), gaps
    if local_steps > 1:
        assert len({tuple(p) for p in schedules}) == 4, "ranks share a schedule"


def test_warmup_pushes_every_step_then_follows_the_schedule():
    s = state(0, local_steps=6, warmup_steps=3)
    pushes = take_steps(s, 30)
    assert pushes[:3] == [1, 2, 3] and all(b - a >= 3 for a, b in zip(pushes[3:], pushes[4:]))


def test_state_dict_round_trip_and_refusals():
    s = state(1, step_budget=50)
    take_steps(s, 17)
    s.global_steps = 40
    copy = state(1, step_budget=50)
    copy.load_state_dict(s.state_dict())
    assert (copy.step, copy.syncs, copy.next_sync, copy.last_push_step) == (s.step, s.syncs, s.next_sync,
                                                                             s.last_push_step)
    assert take_steps(copy, 30) == take_steps(s, 30)
    assert not s.should_stop
    s.global_steps = 50
    assert s.should_stop
    with pytest.raises(ValueError, match="rank=1.*rank=2"):
        state(2).load_state_dict(s.state_dict())
    with pytest.raises(ValueError, match="progress must be one of thread, none"):
        state(0, progress="busy")
    with pytest.raises(ValueError, match="host_rank must be an integer >= 0"):
        state(0, host_rank=-1)
    with pytest.raises(ValueError, match="step_budget must be an integer >= 1"):
        state(0, step_budget=0)
