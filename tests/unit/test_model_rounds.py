"""Outer optimizer, memory decay, fragments and the round settings' checks, on one process."""
import argparse
import functools

import horovod.torch as hvd
import pytest
import torch
from torch import nn

from hvd_qsparse import ErrorFeedback
from hvd_qsparse.algorithms import QsparseLocalSGD, QsparseState
from hvd_qsparse.compression import create
from hvd_qsparse.optim import FragmentPlan, OuterOptimizer, outer_factory
from hvd_qsparse.optim.fragments import cut

from ._helpers import dense_of, randn


def named(*sizes):
    return [(f"t{i}", torch.zeros(s)) for i, s in enumerate(sizes)]


@pytest.mark.parametrize("decay", [1.0, 0.95, 0.5])
def test_decayed_memory_invariant(decay):
    comp, ef = create("topk+sign", ratio=0.1), ErrorFeedback(decay)
    for step in range(5):
        value = randn(8, 25, seed=step)
        old = ef.memory.get("w", torch.zeros(8, 25)).clone()
        _, _, selection = ef.compress("w", value, comp, seed=step)
        lhs = dense_of(selection, value).double() + ef.memory["w"].double()
        rhs = value.double() + decay * old.double()
        assert torch.allclose(lhs, rhs, atol=1e-5), (lhs - rhs).abs().max()


def test_decay_rejects_out_of_range():
    for bad in (0.0, 1.5, -1, True, "0.9"):
        with pytest.raises(ValueError, match="memory_decay"):
            ErrorFeedback(bad)


def test_outer_sgd_lr1_is_the_plain_rule_and_nesterov_keeps_momentum():
    x_hat = {"a": torch.randn(5), "b": torch.randn(2, 3)}
    change = {"a": torch.randn(5)}
    plain = {n: t.clone() for n, t in x_hat.items()}
    plain["a"] -= change["a"]
    outer = OuterOptimizer(functools.partial(torch.optim.SGD, lr=1.0))
    stepped = {n: t.clone() for n, t in x_hat.items()}
    outer.step(stepped, change)
    assert torch.equal(stepped["a"], plain["a"]) and torch.equal(stepped["b"], x_hat["b"])
    nesterov = OuterOptimizer(outer_factory("nesterov", 0.7, 0.9))
    y = {n: t.clone() for n, t in x_hat.items()}
    nesterov.step(y, change)
    nesterov.step(y, change)  # b ← 0.9·Δ + Δ; x ← x − 0.7·(Δ + 0.9·b), twice
    b1 = change["a"]
    first = x_hat["a"] - 0.7 * (change["a"] + 0.9 * b1)
    b2 = 0.9 * b1 + change["a"]
    assert torch.allclose(y["a"], first - 0.7 * (change["a"] + 0.9 * b2), atol=1e-6)
    assert torch.equal(y["b"], x_hat["b"]), "a tensor without a change this round moved"


def test_outer_state_round_trip_before_and_after_it_is_built():
    made = functools.partial(torch.optim.SGD, lr=0.5, momentum=0.9)
    a, x = OuterOptimizer(made), {"w": torch.ones(3)}
    a.step(x, {"w": torch.full((3,), 0.1)})
    b = OuterOptimizer(made)
    b.load_state_dict(a.state_dict())  # not built yet: applied at its first step
    xa, xb = {"w": x["w"].clone()}, {"w": x["w"].clone()}
    a.step(xa, {"w": torch.full((3,), 0.2)})
    b.step(xb, {"w": torch.full((3,), 0.2)})
    assert torch.equal(xa["w"], xb["w"])
    with pytest.raises(ValueError, match="outer optimizer"):
        OuterOptimizer(functools.partial(torch.optim.Adam, lr=0.1)).load_state_dict(a.state_dict())


@pytest.mark.parametrize("kind,lr,momentum,match", [
    ("adam", 0.7, 0.9, "--outer"), ("sgd", 0.0, 0.9, "--outer-lr"), ("sgd", 0.7, 1.0, "--outer-momentum"),
    ("nesterov", 0.7, 0.0, "--outer-momentum")])
def test_outer_flags_errors_name_the_flag(kind, lr, momentum, match):
    with pytest.raises(ValueError, match=match):
        outer_factory(kind, lr, momentum)


@pytest.mark.parametrize("sizes,count", [((10, 1, 1, 1, 100, 1, 1), 3), ((100, 1, 1), 3), ((5,) * 10, 3),
                                         ((7, 9, 3, 40, 2), 5), ((1, 1, 1, 100), 2)])
def test_fragments_partition_consecutive_runs(sizes, count):
    members = cut(named(*sizes), count)
    assert len(members) == count and all(members)
    assert [i for m in members for i in m] == list(range(len(sizes)))


def test_fragments_balance_and_bounds():
    members = cut(named(*(5,) * 12), 4)
    assert [len(m) for m in members] == [3, 3, 3, 3]
    with pytest.raises(ValueError, match="fragments"):
        FragmentPlan(named(3, 3), 3)


def test_fragment_schedule_once_per_h():
    state = QsparseState(create("none"), local_steps=8, fragments=4)
    starts = {f: [t for t in range(32) if f in state.fragments_due(t)] for f in range(4)}
    assert starts == {f: [t for t in range(32) if (t + 1) % 8 == 2 * f] for f in range(4)}
    assert all(len(state.fragments_due(t)) <= 1 for t in range(32))


@pytest.mark.parametrize("options,match", [
    ({"local_steps": 4, "sync_delay": 4}, "sync_delay"), ({"local_steps": 4, "fragments": 5}, "fragments"),
    ({"local_steps": 4, "mixing": 1.0}, "mixing"), ({"local_steps": 1, "mixing": 0.5}, "local_steps"),
    ({"local_steps": 1, "outer_optimizer": "nesterov"}, "local_steps"),
    ({"local_steps": 4, "memory_decay": 0}, "memory_decay")])
def test_bad_round_settings_are_refused(options, match):
    model = nn.Linear(3, 2)
    with pytest.raises(ValueError, match=match):
        QsparseLocalSGD(torch.optim.SGD(model.parameters(), lr=0.1), model.named_parameters(), **options)


def test_risgd_refuses_streaming_settings():
    from hvd_qsparse.algorithms import RISGD
    model = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="--sync-delay"):
        RISGD(torch.optim.SGD(model.parameters(), lr=0.1), model.named_parameters(), local_steps=4, sync_delay=1)


def test_flags_reach_the_constructor_and_quiet_defaults_stay_off_the_setting_line():
    parser = argparse.ArgumentParser()
    parser.add_argument("--compressor", default="topk+sign")
    for flag in ("--ratio", "--levels"):
        parser.add_argument(flag, default=None)
    parser.add_argument("--local-steps", type=int, default=8)
    parser.add_argument("--warmup-steps", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    QsparseLocalSGD.add_arguments(parser)
    today = QsparseLocalSGD.options_from_args(parser.parse_args([]))
    assert QsparseLocalSGD.describe_setting(today) == "topk+sign(ratio=0.01) H=8 exchange=auto fusion=bucket"
    args = parser.parse_args(["--outer", "nesterov", "--memory-decay", "0.95", "--sync-delay", "1",
                              "--fragments", "2"])
    options = QsparseLocalSGD.options_from_args(args)
    assert options["outer_optimizer"] == "nesterov" and options["outer_lr"] == 0.7
    line = QsparseLocalSGD.describe_setting(options)
    assert "outer_optimizer=nesterov" in line and "sync_delay=1" in line and "mixing" not in line
    hvd.init()
    model = nn.Linear(3, 2)
    opt = QsparseLocalSGD(torch.optim.SGD(model.parameters(), lr=0.1), model.named_parameters(), **options)
    state = opt.local_sgd_state
    assert (state.memory_decay, state.sync_delay, state.fragments) == (0.95, 1, 2)
    assert isinstance(state.outer.factory(list(model.parameters())), torch.optim.SGD)
