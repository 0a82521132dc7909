"""Tensor fusion for compression (``optim.fusion``): groups, round trips, what top-k keeps."""
import pytest
import torch

from hvd_qsparse.algorithms import QsparseState
from hvd_qsparse.compression import create
from hvd_qsparse.error_feedback import ErrorFeedback
from hvd_qsparse.optim import Fusion

from ._helpers import randn


def named(*shapes):
    return [(f"t{i}", randn(*shape, seed=i)) for i, shape in enumerate(shapes)]


def test_groups_are_consecutive_runs_under_the_cap():
    groups = Fusion("bucket", cap_numel=7).groups(named((3,), (4,), (5,), (9,), (1,)))
    assert [g.positions for g in groups] == [(0, 1), (2,), (3,), (4,)]
    assert [g.name for g in groups] == ["t0...t1", "t2", "t3", "t4"]  # a lone tensor keeps its own name
    assert [g.numel for g in groups] == [7, 5, 9, 1]


def test_tensor_mode_leaves_every_tensor_alone():
    groups = Fusion("tensor").groups(named((3,), (4, 2), (5,)))
    assert [g.positions for g in groups] == [(0,), (1,), (2,)]


def test_bad_mode_and_cap_are_refused_naming_them():
    with pytest.raises(ValueError, match="fusion"):
        Fusion("layer")
    with pytest.raises(ValueError, match="bucket_cap_numel"):
        Fusion("bucket", cap_numel=0)


def test_join_then_split_gives_back_every_tensor_as_a_view():
    values = named((2, 3), (4,), (1, 1, 5))
    group = Fusion().groups(values)[0]
    flat = group.join([v for _, v in values])
    assert flat.shape == (15,)
    pieces = group.split(flat)
    for (_, v), piece in zip(values, pieces):
        assert piece.shape == v.shape and torch.equal(piece, v)
        assert piece.data_ptr() >= flat.data_ptr()  # views of the flat vector, no copy


def test_fused_topk_keeps_the_largest_entries_of_the_whole_bucket():
    big, small = 10 * randn(100, seed=1), 0.01 * randn(100, seed=2)
    comp = create("topk", ratio=0.1)
    group = Fusion().groups([("big", big), ("small", small)])[0]
    _, _, selection = comp.compress_selected(group.join([big, small]), seed=0)
    assert selection.indices.numel() == 20 and bool((selection.indices < 100).all())  # all from `big`
    per_tensor = [comp.compress_selected(v, seed=0)[2].indices.numel() for v in (big, small)]
    assert per_tensor == [10, 10]  # the per-tensor rule gives each tensor its own share


def test_error_feedback_invariant_holds_per_tensor_after_a_split():
    values = named((30,), (7, 3), (50,))
    group = Fusion().groups(values)[0]
    memory = ErrorFeedback()
    for step in range(3):
        fused = group.join([v * (step + 1) for _, v in values])
        before = memory.memory.get(group.name, torch.zeros_like(fused)).clone()
        _, _, selection, finite = memory.compress_finite(group.name, fused, create("topk+sign", ratio=0.1), seed=step)
        assert finite
        sent = selection.dense(fused.numel())
        for a, b in zip(group.split(sent + memory.memory[group.name]), group.split(fused + before)):
            assert torch.allclose(a, b, atol=1e-6)


def test_a_checkpoint_of_the_other_fusion_mode_is_refused():
    fused = QsparseState(create("topk", ratio=0.1), fusion="bucket")
    alone = QsparseState(create("topk", ratio=0.1), fusion="tensor")
    with pytest.raises(ValueError, match="fusion"):
        alone.load_state_dict(fused.state_dict())


def test_a_checkpoint_from_before_fusion_counts_as_per_tensor():
    old = QsparseState(create("topk", ratio=0.1), fusion="tensor").state_dict()
    del old["fusion"]
    QsparseState(create("topk", ratio=0.1), fusion="tensor").load_state_dict(old)
    with pytest.raises(ValueError, match="fusion='tensor'"):
        QsparseState(create("topk", ratio=0.1), fusion="bucket").load_state_dict(old)
