"""Error-feedback memory: D(p) + m_new == v + m_old, nothing lost, checkpointable."""
import pytest
import torch

from hvd_qsparse import ErrorFeedback
from hvd_qsparse.compression import create

from ._helpers import NON_SUMMABLE, SUMMABLE, dense_of, make, randn

STEPS = 6


def check_invariant(decoded, new_mem, value, old_mem):
    """decoded + new memory == value + old memory, up to float32 rounding (1e-6 relative)."""
    lhs = decoded.double() + new_mem.double()
    rhs = value.double() + old_mem.double()
    scale = max(1.0, rhs.abs().max().item())
    assert torch.allclose(lhs, rhs, rtol=0, atol=1e-6 * scale), (lhs - rhs).abs().max()


@pytest.mark.parametrize("name", NON_SUMMABLE + SUMMABLE)
def test_invariant_over_successive_steps(name):
    comp = make(name, ratio=0.1, levels=4)
    ef = ErrorFeedback()
    shape = (8, 25)
    total_value = torch.zeros(shape, dtype=torch.float64)
    total_decoded = torch.zeros(shape, dtype=torch.float64)
    for step in range(STEPS):
        value = randn(*shape, seed=step)
        old = ef.memory.get("w", torch.zeros(shape)).clone()
        payload, ctx, selection = ef.compress("w", value, comp, seed=1000 + step, stream=0)
        decoded = dense_of(selection, value)
        new = ef.memory["w"]
        assert new.dtype == torch.float32 and new.shape == value.shape
        assert decoded.shape == value.shape
        # what the receivers will decode is what error feedback accounted for
        assert torch.equal(comp.decompress(payload, ctx).float(), decoded.float())
        check_invariant(decoded, new, value, old)
        total_value += value.double()
        total_decoded += decoded.double()
    # telescoped: nothing lost, only delayed
    assert torch.allclose(total_decoded + ef.memory["w"].double(), total_value, atol=1e-5)
    if name not in ("none", "fp16"):
        assert ef.memory["w"].abs().sum() > 0  # lossy compressors leave a residual


def test_identity_compressor_payload_not_zeroed():
    """Regression: the summable 'none' payload aliases the compensated buffer; an in-place
    memory update (compensated.sub_(decoded)) once zeroed payload, decoded and memory."""
    comp = create("none")
    ef = ErrorFeedback()
    for step in range(3):
        value = randn(10, seed=step)
        payload, ctx, selection = ef.compress("w", value, comp)
        decoded = dense_of(selection, value)
        assert torch.equal(payload, value)
        assert torch.equal(decoded, value)
        assert torch.equal(ef.memory["w"], torch.zeros(10))


@pytest.mark.parametrize("name", ["topk", "randk+sign", "qsgd", "topk+qsgd"])
def test_memory_starts_at_zero(name):
    comp = make(name, ratio=0.1, levels=4)
    ef = ErrorFeedback()
    assert ef.memory == {}
    value = randn(300, seed=1)
    payload, ctx, selection = ef.compress("a", value, comp, seed=7, stream=2)
    decoded = dense_of(selection, value)
    direct, _ = comp.compress(value, seed=7, stream=2)
    assert torch.equal(payload, direct)              # first step compresses v + 0
    assert torch.equal(ef.memory["a"], value - decoded)
    assert ef.residual_norm() == pytest.approx((value - decoded).norm().item(), rel=1e-6)


def test_memories_are_per_name_and_dtype_fp32():
    comp = create("topk", ratio=0.2)
    ef = ErrorFeedback()
    ef.compress("a", randn(10, seed=1), comp)
    ef.compress("b", randn(2, 3, seed=2, dtype=torch.float16), comp)
    assert set(ef.memory) == {"a", "b"}
    assert ef.memory["b"].shape == (2, 3) and ef.memory["b"].dtype == torch.float32
    a_before = ef.memory["a"].clone()
    ef.compress("b", randn(2, 3, seed=3, dtype=torch.float16), comp)
    assert torch.equal(ef.memory["a"], a_before)
    expected = (a_before.pow(2).sum() + ef.memory["b"].pow(2).sum()).sqrt().item()
    assert ef.residual_norm() == pytest.approx(expected, rel=1e-6)
    ef.reset()
    assert ef.memory == {} and ef.residual_norm() == 0.0


@pytest.mark.parametrize("name", NON_SUMMABLE)
def test_state_dict_round_trip_identical_continuation(name):
    comp = make(name, ratio=0.1, levels=4)
    ef = ErrorFeedback()
    for step in range(3):
        ef.compress("w", randn(4, 50, seed=step), comp, seed=step, stream=1)
        ef.compress("b", randn(50, seed=10 + step), comp, seed=50 + step, stream=1)
    state = ef.state_dict()
    saved = {k: v.clone() for k, v in state["memory"].items()}
    restored = ErrorFeedback()
    restored.load_state_dict(state)
    nxt = randn(4, 50, seed=99)
    p1, c1, d1 = ef.compress("w", nxt, comp, seed=123, stream=1)
    p2, c2, d2 = restored.compress("w", nxt, comp, seed=123, stream=1)
    assert torch.equal(p1, p2)              # same payload bytes
    assert c1 == c2 and torch.equal(d1.dense(nxt.numel()), d2.dense(nxt.numel()))
    assert torch.equal(ef.memory["w"], restored.memory["w"])
    # the state dict is a copy: later steps do not change it
    for key, value in saved.items():
        assert torch.equal(state["memory"][key], value)
    assert not torch.equal(state["memory"]["w"], ef.memory["w"])


def test_load_state_dict_copies_and_casts_to_fp32():
    state = {"memory": {"w": torch.ones(3, dtype=torch.float64)}}
    ef = ErrorFeedback()
    ef.load_state_dict(state)
    assert ef.memory["w"].dtype == torch.float32
    state["memory"]["w"].fill_(5.0)
    assert torch.equal(ef.memory["w"], torch.ones(3))


def test_torch_save_load_round_trip(tmp_path):
    comp = create("topk+sign", ratio=0.1)
    ef = ErrorFeedback()
    ef.compress("w", randn(100, seed=1), comp)
    torch.save(ef.state_dict(), tmp_path / "ef.pt")
    other = ErrorFeedback()
    other.load_state_dict(torch.load(tmp_path / "ef.pt"))
    assert torch.equal(other.memory["w"], ef.memory["w"])


def test_shape_mismatch_raises_and_keeps_memory():
    comp = create("topk", ratio=0.1)
    ef = ErrorFeedback()
    ef.compress("w", randn(4, 5, seed=1), comp)
    before = ef.memory["w"].clone()
    with pytest.raises(ValueError, match="shape"):
        ef.compress("w", randn(5, 4, seed=2), comp)
    with pytest.raises(ValueError, match="'w'"):
        ef.compress("w", randn(21, seed=2), comp)
    assert torch.equal(ef.memory["w"], before)


@pytest.mark.parametrize("name", NON_SUMMABLE + SUMMABLE)
def test_in_place_memory_update_matches_dense_decode(name):
    """The memory updated from the compressor's selection (no decode) is the one the dense
    decode gives, m = u − D(C(u)), with the same payload."""
    comp = make(name, ratio=0.1, levels=4)
    fast, dense_memory = ErrorFeedback(), torch.zeros(7, 33)
    for step in range(3):
        value = randn(7, 33, seed=step)
        compensated = value + dense_memory
        p_dense, ctx = comp.compress(compensated, seed=50 + step)
        dense_memory = compensated - comp.decompress(p_dense, ctx).float()
        p_fast, _, _ = fast.compress("w", value, comp, seed=50 + step)
        assert torch.equal(p_dense, p_fast)
        assert torch.allclose(dense_memory, fast.memory["w"], rtol=0, atol=1e-6)
