"""RI-SGD's data placement: coverage, re-mapping after losses, determinism, exact epochs."""
import itertools

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from hvd_qsparse.data import RedundantSampler, assign_chunks, holders, split_chunks, window

N, B = 103, 8
CASES = [(p, q) for p in (1, 3, 4, 5) for q in range(1, p + 1)]


def sampler(p, q, slot, seed=0, labels=None, batch_size=B):
    return RedundantSampler(N, batch_size, num_chunks=p, redundancy=q, slot=slot, seed=seed, labels=labels)


def epoch_indices(s, epoch):
    s.set_epoch(epoch)
    return [i for batch in s for i in batch]


@pytest.mark.parametrize("p,q", CASES)
def test_every_chunk_held_q_times(p, q):
    assignment = assign_chunks(range(p), q, p)
    assert holders(assignment, p) == [q] * p
    assert all(assignment[j] == [(j + i) % p for i in range(q)] for j in range(p))


@pytest.mark.parametrize("p,q", CASES)
def test_losing_any_q_minus_1_keeps_coverage_without_moving_data(p, q):
    for lost in itertools.combinations(range(p), q - 1):
        alive = [s for s in range(p) if s not in lost]
        assignment = assign_chunks(alive, q, p)
        assert min(holders(assignment, p)) >= 1, (p, q, lost)
        assert all(assignment[s] == window(s, q, p) for s in alive), "a survivor's chunks moved"


@pytest.mark.parametrize("p,q", [(3, 1), (4, 1), (4, 2), (5, 2), (5, 3)])
def test_losing_q_or_more_adopts_orphans(p, q):
    for lost_count in range(q, p):
        for lost in itertools.combinations(range(p), lost_count):
            alive = [s for s in range(p) if s not in lost]
            assignment = assign_chunks(alive, q, p)
            assert min(holders(assignment, p)) >= 1, (p, q, lost)
            sizes = [len(c) for c in assignment.values()]
            assert max(sizes) - min(sizes) <= max(1, q), (p, q, lost, assignment)


@pytest.mark.parametrize("p,q", [(3, 1), (3, 2), (4, 2), (4, 4), (5, 3)])
def test_one_epoch_draws_each_held_sample_exactly_once(p, q):
    chunks = split_chunks(N, p, seed=0)
    assert sorted(torch.cat(chunks).tolist()) == list(range(N))
    lengths = set()
    for slot in range(p):
        s = sampler(p, q, slot)
        drawn = epoch_indices(s, 2)
        held = sorted(torch.cat([chunks[c] for c in window(slot, q, p)]).tolist())
        assert sorted(drawn) == held          # nothing lost, nothing repeated
        assert all(0 < len(b) <= B for b in s.epoch_batches(2))
        lengths.add(len(s))
    assert len(lengths) == 1, "workers must take the same number of steps per epoch"


def test_deterministic_per_seed_epoch_and_slot():
    a, b = sampler(4, 2, 1), sampler(4, 2, 1)
    assert epoch_indices(a, 3) == epoch_indices(b, 3)
    assert epoch_indices(a, 3) != epoch_indices(a, 4)
    assert epoch_indices(a, 3) != epoch_indices(sampler(4, 2, 1, seed=1), 3)
    assert set(epoch_indices(a, 3)) != set(epoch_indices(sampler(4, 2, 2), 3))


def test_q1_is_a_disjoint_split_and_q_p_is_everything():
    drawn = [set(epoch_indices(sampler(4, 1, j), 0)) for j in range(4)]
    assert sum(map(len, drawn)) == N and set().union(*drawn) == set(range(N))
    assert all(set(epoch_indices(sampler(4, 4, j), 0)) == set(range(N)) for j in range(4))


def test_non_iid_chunks_are_label_sorted():
    labels = torch.arange(N) % 10
    chunks = split_chunks(N, 5, seed=0, labels=labels)
    spans = [(int(labels[c].min()), int(labels[c].max())) for c in chunks]
    assert all(hi <= lo for (_, hi), (lo, _) in itertools.pairwise(spans)), spans
    assert all(hi - lo <= 2 for lo, hi in spans)
    iid = split_chunks(N, 5, seed=0)
    assert min(len(set(labels[c].tolist())) for c in iid) >= 7  # a shuffled split mixes classes


def test_state_dict_resumes_mid_epoch():
    a = sampler(3, 2, 2)
    a.set_epoch(5)
    it = iter(a)
    first = [next(it) for _ in range(3)]
    state = a.state_dict()
    b = sampler(3, 2, 0)
    b.load_state_dict(state)
    assert b.slot == 2 and b.position == 3
    assert first + list(b) == [t.tolist() for t in a.epoch_batches(5)]
    with pytest.raises(ValueError, match="redundancy"):
        sampler(3, 1, 0).load_state_dict(state)


def test_remap_after_loss_keeps_survivors_position_and_batches():
    s = sampler(3, 2, 2)
    before = s.epoch_batches(1)
    assignment = s.set_workers([0, 2])
    assert assignment == {0: [0, 1], 2: [2, 0]}
    assert [t.tolist() for t in s.epoch_batches(1)] == [t.tolist() for t in before]
    lone = sampler(3, 1, 0)
    lone.set_workers([0])
    assert lone.held == [0, 1, 2] and len(epoch_indices(lone, 0)) == N


def test_works_as_a_dataloader_batch_sampler():
    data = TensorDataset(torch.arange(N))
    loader = DataLoader(data, batch_sampler=sampler(4, 2, 3))
    seen = torch.cat([x for (x,) in loader]).tolist()
    assert sorted(seen) == sorted(epoch_indices(sampler(4, 2, 3), 0))


@pytest.mark.parametrize("kwargs,needle", [
    (dict(redundancy=0), "redundancy"), (dict(redundancy=5), r"redundancy must be an integer in \[1, 4\]"),
    (dict(slot=4), "slot"), (dict(slot=-1), "slot"), (dict(batch_size=0), "batch_size"),
    (dict(num_chunks=0), "num_chunks"), (dict(seed=-2), "seed"), (dict(redundancy=1.5), "redundancy"),
    (dict(labels=torch.zeros(3)), "labels"),
])
def test_bad_input_names_the_parameter(kwargs, needle):
    args = dict(num_samples=N, batch_size=B, num_chunks=4, redundancy=2, slot=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=needle):
        RedundantSampler(**args)


def test_bad_membership_rejected():
    with pytest.raises(ValueError, match="alive"):
        assign_chunks([], 1, 3)
    with pytest.raises(ValueError, match="alive"):
        assign_chunks([0, 3], 1, 3)
    with pytest.raises(ValueError, match="this worker's slot 1"):
        sampler(3, 2, 1).set_workers([0, 2])
    with pytest.raises(ValueError, match="batch_size=1 is too small"):
        s = sampler(4, 1, 0, batch_size=1)
        s.set_workers([0, 1])          # slot 1 adopts two chunks: K = 52 > slot 0's 26 samples
        s.epoch_batches(0)
