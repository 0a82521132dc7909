"""DoubleSqueeze's pieces in one process: the shard plan, the server step, the state, the flags."""
import argparse

import pytest
import torch

from hvd_qsparse.algorithms import DoubleSqueeze, DoubleSqueezeState
from hvd_qsparse.algorithms.doublesqueeze_server import DoubleSqueezeServer
from hvd_qsparse.comm import shard_sizes
from hvd_qsparse.compression import Context
from hvd_qsparse.error_feedback import ErrorFeedback

from ._helpers import make, randn

LOSSY = ["sign", "topk", "qsgd", "topk+sign", "randk+qsgd"]


@pytest.mark.parametrize("numel,parts,expected", [(10, 3, [4, 3, 3]), (8, 4, [2, 2, 2, 2]), (5, 5, [1] * 5),
                                                  (7, 1, [7]), (17226, 4, [4307, 4307, 4306, 4306])])
def test_shards_are_contiguous_near_equal_larger_first(numel, parts, expected):
    assert shard_sizes(numel, parts) == expected


@pytest.mark.parametrize("numel,parts,needle", [(3, 4, "3 entries cannot fill 4 shards"), (5, 0, ">= 1"),
                                                (5, 1.5, ">= 1")])
def test_bad_shard_plans_raise(numel, parts, needle):
    with pytest.raises(ValueError, match=needle):
        shard_sizes(numel, parts)


def worker_payloads(comp, numel, ranks, step):
    """What ``ranks`` workers would send for one shard (shared seed, own rounding stream)."""
    seed = 1000 + step
    payloads = [comp.compress(randn(numel, seed=10 * step + r), seed=seed, stream=r)[0] for r in range(ranks)]
    return payloads, Context(torch.Size([numel]), torch.float32, seed)


@pytest.mark.parametrize("name", LOSSY)
def test_server_step_keeps_what_it_did_not_send(name):
    comp = make(name, ratio=0.1, levels=4)
    server = DoubleSqueezeServer(comp, ErrorFeedback())
    for step in range(4):
        payloads, ctx = worker_payloads(comp, 300, 3, step)
        old = server.memory.memory.get("shard2", torch.zeros(300)).clone()
        reply, mean, decoded = server.serve(2, payloads, ctx)
        expected_mean = sum(comp.decompress(p, ctx) for p in payloads) / 3
        assert torch.allclose(mean, expected_mean, atol=1e-6)
        assert torch.equal(comp.decompress(reply, ctx).float(), decoded)
        lhs, rhs = decoded + server.memory.memory["shard2"], mean + old
        assert torch.allclose(lhs, rhs, rtol=0, atol=1e-6 * max(1.0, rhs.abs().max().item()))
    assert server.memory.residual_norm() > 0


def test_a_server_ratio_keeps_more_of_the_mean_and_sums_when_asked():
    comp, wide = make("topk", ratio=0.05), make("topk", ratio=0.2)
    payloads, ctx = worker_payloads(comp, 400, 4, 0)
    union = int((sum(comp.decompress(p, ctx) for p in payloads) != 0).sum())
    assert union > 20  # four workers' 20 entries each land on more than 20 coordinates
    reply, mean, decoded = DoubleSqueezeServer(comp, ErrorFeedback(), wide).serve(0, payloads, ctx)
    assert reply.numel() == wide.payload_nbytes(400) > comp.payload_nbytes(400)
    assert int((decoded != 0).sum()) == min(80, union)
    _, total, _ = DoubleSqueezeServer(comp, ErrorFeedback(), average=False).serve(0, payloads, ctx)
    assert torch.allclose(total, 4 * mean, atol=1e-6)


@pytest.mark.parametrize("name", ["sign", "topk"])
def test_server_without_memory_compresses_the_mean_alone(name):
    comp = make(name, ratio=0.1)
    payloads, ctx = worker_payloads(comp, 200, 2, 0)
    reply, mean, decoded = DoubleSqueezeServer(comp, None).serve(1, payloads, ctx)
    direct, _ = comp.compress(mean, seed=ctx.seed, stream=-2)
    assert torch.equal(reply, direct)
    assert torch.equal(decoded, comp.decompress(direct, ctx))


def test_server_step_is_the_same_for_every_layout():
    """Whichever rank serves a shard (rank j sharded, rank 0 as the ps), the same shard gives the
    same reply bytes (qsgd: stochastic): the step depends on (shard, payloads, ctx) only."""
    comp = make("qsgd", levels=4)
    payloads, ctx = worker_payloads(comp, 500, 4, 1)
    sharded = DoubleSqueezeServer(comp, ErrorFeedback()).serve(3, payloads, ctx)
    ps = DoubleSqueezeServer(comp, ErrorFeedback()).serve(3, payloads, ctx)
    assert all(torch.equal(a, b) for a, b in zip(sharded, ps))


def test_randk_server_pass_keeps_the_workers_coordinates():
    comp = make("randk", ratio=0.1)
    server = DoubleSqueezeServer(comp, ErrorFeedback())
    payloads, ctx = worker_payloads(comp, 400, 2, 0)
    _, mean, decoded = server.serve(0, payloads, ctx)
    assert torch.equal(decoded, mean) and server.memory.residual_norm() == 0.0


def test_state_validates_its_arguments():
    comp = make("sign")
    with pytest.raises(ValueError, match="server_layout must be one of sharded, ps"):
        DoubleSqueezeState(comp, 2, 100, server_layout="ring")
    with pytest.raises(ValueError, match="server_memory must be True or False"):
        DoubleSqueezeState(comp, 2, 100, server_memory="yes")
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        DoubleSqueezeState(comp, 2, 100, seed=-1)
    with pytest.raises(ValueError, match="cannot fill"):
        DoubleSqueezeState(comp, 8, 5)


def test_state_dict_round_trip_and_mismatch():
    comp = make("topk", ratio=0.2)
    state = DoubleSqueezeState(comp, 2, 50, seed=4)
    state.worker_memory.compress("shard0", randn(25, seed=1), comp)
    state.server_memory.compress("shard1", randn(25, seed=2), comp)
    state.step, state.bits_received = 3, 800
    saved = state.state_dict()
    other = DoubleSqueezeState(comp, 2, 50)
    other.load_state_dict(saved)
    assert other.step == 3 and other.seed == 4 and other.bits_received == 800
    assert torch.equal(other.worker_memory.memory["shard0"], state.worker_memory.memory["shard0"])
    assert torch.equal(other.server_memory.memory["shard1"], state.server_memory.memory["shard1"])
    for kwargs, needle in (({"server_layout": "ps"}, "server_layout"), ({"server_memory": False}, "server_memory")):
        with pytest.raises(ValueError, match=needle):
            DoubleSqueezeState(comp, 2, 50, **kwargs).load_state_dict(saved)
    with pytest.raises(ValueError, match="ranks"):
        DoubleSqueezeState(comp, 5, 50).load_state_dict(saved)


def flags(**overrides):
    base = {"compressor": "sign", "ratio": 0.05, "levels": 256, "local_steps": 4, "warmup_steps": 0,
            "seed": 0, "server_layout": "sharded", "no_server_memory": False, "server_ratio": None,
            "shard_scope": "flat"}
    return argparse.Namespace(**{**base, **overrides})


def test_options_from_flags():
    options = DoubleSqueeze.options_from_args(flags(server_layout="ps", no_server_memory=True))
    assert options == {"compressor": "sign", "ratio": 0.05, "levels": 256, "server_layout": "ps",
                       "server_memory": False, "seed": 0}
    assert DoubleSqueeze.options_from_args(flags(server_ratio=0.2))["server_ratio"] == 0.2
    with pytest.raises(ValueError, match="--warmup-steps must be 0"):
        DoubleSqueeze.options_from_args(flags(warmup_steps=2))


def test_flags_are_in_the_job_parser():
    parser = argparse.ArgumentParser()
    DoubleSqueeze.add_arguments(parser.add_argument_group("doublesqueeze"))
    args = parser.parse_args(["--server-layout", "ps", "--no-server-memory"])
    assert args.server_layout == "ps" and args.no_server_memory
    with pytest.raises(SystemExit):
        parser.parse_args(["--server-layout", "ring"])
