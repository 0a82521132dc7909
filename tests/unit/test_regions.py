"""The regions of the sharded exchange (``optim.pipeline.region_values``) and the settings
``QsparseState`` accepts with it; the exchange itself runs under real ranks
(tests/parallel/test_sharded_exchange.py)."""
import pytest
import torch

from hvd_qsparse.algorithms import QsparseState
from hvd_qsparse.comm.two_pass import owner
from hvd_qsparse.compression import create
from hvd_qsparse.optim import region_keys
from hvd_qsparse.optim.pipeline import region_values


@pytest.mark.parametrize("numel,regions", [(1001, 4), (16, 4), (5, 4), (2, 3), (0, 2), (7, 1)])
def test_regions_cover_every_entry_once_and_differ_by_one_at_most(numel, regions):
    value = torch.arange(numel, dtype=torch.float32)
    parts = region_values("w", value, regions)
    assert [k for k, _ in parts] == region_keys("w", regions)
    assert torch.equal(torch.cat([p.reshape(-1) for _, p in parts]), value)  # in order, each entry once
    sizes = [p.numel() for _, p in parts]
    assert len(sizes) == regions and max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_one_region_keeps_the_group_name_and_the_value_itself():
    value = torch.ones(3, 2)
    [(key, part)] = region_values("a...b", value, 1)
    assert key == "a...b" and part is value


def test_region_j_of_every_group_goes_to_rank_j():
    assert [owner(m, 3) for m in range(7)] == [0, 1, 2, 0, 1, 2, 0]


def test_sharded_state_keeps_owner_memories_and_refuses_what_it_cannot_run():
    state = QsparseState(create("topk", ratio=0.1), exchange="sharded")
    assert state.sharded and state.server_memory is not None and state.server_compressor is state.compressor
    assert QsparseState(create("topk", ratio=0.1)).server_memory is None
    with pytest.raises(ValueError, match="sync_delay"):
        QsparseState(create("topk", ratio=0.1), local_steps=4, sync_delay=1, exchange="sharded")
    with pytest.raises(ValueError, match="server-ratio"):
        QsparseState(create("topk", ratio=0.1), exchange="allgather", server_compressor=create("topk", ratio=0.2))


def test_a_checkpoint_resumes_only_with_the_same_exchange_and_regions():
    sharded = QsparseState(create("topk", ratio=0.1), exchange="sharded")
    sharded.regions = 4
    sharded.server_memory.memory["w@1"] = torch.ones(3)
    saved = sharded.state_dict()
    again = QsparseState(create("topk", ratio=0.1), exchange="sharded")
    again.regions = 4
    again.load_state_dict(saved)
    assert torch.equal(again.server_memory.memory["w@1"], torch.ones(3))
    other = QsparseState(create("topk", ratio=0.1), exchange="sharded")
    other.regions = 2
    with pytest.raises(ValueError, match="regions"):
        other.load_state_dict(saved)
    with pytest.raises(ValueError, match="sharded"):
        QsparseState(create("topk", ratio=0.1)).load_state_dict(saved)
    old = QsparseState(create("topk", ratio=0.1)).state_dict()
    for key in ("server_memory", "server_compressor", "server_params", "regions"):
        old.pop(key)
    QsparseState(create("topk", ratio=0.1)).load_state_dict(old)  # checkpoints from before the exchange
