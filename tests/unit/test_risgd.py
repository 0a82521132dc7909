"""RI-SGD in one process (hvd.init() gives size 1): round counting, commits, flags, elastic
state save/restore, slot claiming."""
import horovod.torch as hvd
import pytest
import torch

import hvd_qsparse
from hvd_qsparse.algorithms import RiSGDState
from hvd_qsparse.algorithms.qsparse_state import QsparseState
from hvd_qsparse.algorithms.risgd_elastic import RiSGDElasticState, claim_slots
from hvd_qsparse.compression import create
from hvd_qsparse.jobs.train import parse_args
from hvd_qsparse.jobs.train_elastic import parse_args as parse_elastic_args


@pytest.fixture(scope="module")
def horovod():
    hvd.init()
    assert hvd.size() == 1
    # No hvd.shutdown(): it finalizes MPI, which cannot start again in this process, so a
    # later module's hvd.init() would abort the whole test run. Exit finalizes it.
    return hvd


def risgd(model, **kwargs):
    inner = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return hvd_qsparse.DistributedOptimizer(inner, model.named_parameters(), algorithm="risgd", **kwargs)


def model_and_data(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    x, y = torch.randn(60, 6), torch.randint(0, 3, (60,))
    return model, x, y


def train(model, opt, x, y, batches):
    for batch in batches:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        opt.step()


@pytest.mark.parametrize("tau,warmup", [(1, 0), (4, 0), (4, 2), (4, 5), (3, 7)])
def test_rounds_done_counts_communicating_steps(tau, warmup):
    local = QsparseState(create("none"), local_steps=tau, warmup_steps=warmup)
    state = RiSGDState(local, redundancy=2, commit_every=3)
    talks = [local.averages_gradients(s) or local.syncs_model_after(s) for s in range(40)]
    for step in range(41):
        local.step = step
        assert state.rounds_done() == sum(talks[:step])
        assert state.at_round_end() == (step > 0 and talks[step - 1])
        assert state.commit_due() == (state.at_round_end() and sum(talks[:step]) % 3 == 0)


@pytest.mark.parametrize("kwargs,needle", [
    (dict(redundancy=0), "redundancy"), (dict(redundancy=2.0), "redundancy"), (dict(commit_every=0), "commit_every"),
    (dict(redundancy=3, num_chunks=2), "num_chunks"), (dict(non_iid="yes"), "non_iid"),
])
def test_bad_hyperparameters_name_the_parameter(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        RiSGDState(QsparseState(create("none")), **kwargs)


def test_redundancy_above_chunks_is_refused_when_the_sampler_is_made(horovod):
    model, _, y = model_and_data()
    with pytest.raises(ValueError, match=r"redundancy must be an integer in \[1, 1\]"):
        risgd(model, redundancy=2).make_sampler(y, 8)
    sampler = risgd(model, redundancy=2, num_chunks=3, non_iid=True).make_sampler(y, 8)
    # one worker, three chunks: it holds its window [0, 1] and adopts chunk 2 (no data dropped)
    assert (sampler.num_chunks, sampler.redundancy, sampler.held, sampler.non_iid) == (3, 2, [0, 1, 2], True)


@pytest.mark.parametrize("flags,needle", [
    (["--redundancy", "0"], "redundancy"), (["--commit-every", "0"], "commit_every"),
    (["--redundancy", "3", "--chunks", "2"], "num_chunks"),
])
def test_bad_flags_are_usage_errors(capsys, flags, needle):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--algorithm", "risgd", *flags])
    assert exit_info.value.code == 2 and needle in capsys.readouterr().err


def test_flags_reach_the_optimizer():
    args = parse_args(["--algorithm", "risgd", "--redundancy", "2", "--chunks", "4", "--non-iid",
                       "--commit-every", "5", "--local-steps", "8", "--compressor", "none"])
    assert {k: args.options[k] for k in ("redundancy", "num_chunks", "non_iid", "commit_every", "local_steps")} == \
        {"redundancy": 2, "num_chunks": 4, "non_iid": True, "commit_every": 5, "local_steps": 8}


@pytest.mark.parametrize("flags,needle", [
    (["--eval-every", "-1"], "--eval-every"), (["--target-accuracy", "0.9"], "needs --eval-every"),
    (["--eval-every", "2", "--target-accuracy", "1.5"], "--target-accuracy"),
    (["--stop-at-target"], "needs --target-accuracy"), (["--algorithm", "qsparse"], "must be risgd"),
    (["--metrics", "m.csv"], "--metrics: not used by the elastic job"),
    (["--outer", "nesterov"], "--outer: not used by the elastic job"),
    (["--straggler-rank", "1", "--label", "x"], "--label, --straggler-rank: not used"),
    (["--exchange", "sharded"], "--exchange sharded is not available in the elastic job"),
])
def test_elastic_job_bad_flags(capsys, flags, needle):
    with pytest.raises(SystemExit) as exit_info:
        parse_elastic_args(flags)
    assert exit_info.value.code == 2 and needle in capsys.readouterr().err


def test_claim_slots():
    assert claim_slots([None, None, None], 3) == [0, 1, 2]
    assert claim_slots([2, None, 0], 4) == [2, 1, 0]
    assert claim_slots([2, 0], 3) == [2, 0]
    with pytest.raises(ValueError, match="--chunks"):
        claim_slots([None, None, None], 2)


def test_state_dict_round_trip_and_mismatch(horovod):
    model, x, y = model_and_data()
    opt = risgd(model, redundancy=1, local_steps=2, compressor="topk", ratio=0.5)
    train(model, opt, x, y, opt.make_sampler(y, 8).epoch_batches(0))
    state = opt.state_dict()
    twin = risgd(model_and_data()[0], redundancy=1, local_steps=2, compressor="topk", ratio=0.5)
    twin.load_state_dict(state)
    assert twin.step_count == opt.step_count and twin.bits.total_sent == opt.bits.total_sent
    with pytest.raises(ValueError, match="redundancy"):
        risgd(model_and_data()[0], redundancy=2, num_chunks=2).load_state_dict(state)


def test_elastic_restore_rolls_back_to_the_commit_but_keeps_the_bits(horovod):
    model, x, y = model_and_data()
    opt = risgd(model, local_steps=2, commit_every=1, compressor="none")
    sampler = opt.make_sampler(y, 8)
    state = RiSGDElasticState(model, opt, sampler)
    state.sync()
    assert state.joined and sampler.alive == [0] and opt.algorithm_state.memberships == [(0, [0])]
    batches = iter(sampler)
    train(model, opt, x, y, [next(batches) for _ in range(4)])
    assert opt.commit_due()
    state.commit()
    committed = [p.detach().clone() for p in model.parameters()]
    train(model, opt, x, y, [next(batches) for _ in range(3)])
    sent = opt.bits.total_sent
    state.restore()
    assert all(torch.equal(p, c) for p, c in zip(model.parameters(), committed, strict=True))
    assert (opt.step_count, sampler.position) == (4, 4)
    assert opt.bits.total_sent == sent > 0
    replay = iter(sampler)
    train(model, opt, x, y, [next(replay), next(replay)])   # the replayed steps communicate again
    assert opt.bits.total_sent == sent + 32 * opt.flat_numel()
