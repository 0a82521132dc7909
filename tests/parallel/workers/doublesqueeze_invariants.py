"""Both passes lose nothing, on every rank, for several compressors and both layouts:

- worker: D(sent) + new δ_i = g_i + old δ_i, shard by shard;
- server: D(reply) + new δ̄ = mean + old δ̄ for every shard the rank serves, where the mean is
  also recomputed from every rank's decoded messages (the alltoall delivered the right bytes);
- every rank applies the concatenated replies as its gradient, and replicas stay identical;
- the sharded and parameter-server layouts end with bit-identical parameters.
The model has d = 123 entries, so shards are uneven for 2 and 4 ranks.
"""
import sys

import horovod.torch as hvd
import torch
from common import batch, flat_params
from torch import nn

import hvd_qsparse

COMPRESSORS, STEPS = ("sign", "topk", "qsgd", "topk+sign"), 5


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 7), nn.Tanh(), nn.Linear(7, 4))


def close(lhs, rhs, what):
    scale = max(1.0, rhs.abs().max().item())
    err = (lhs.double() - rhs.double()).abs().max().item()
    assert err <= 1e-6 * scale, f"{what}: off by {err}"


def memory(ef, name, numel):
    return ef.memory.get(name, torch.zeros(numel)).clone()


def check_step(opt, grad, old_worker, old_server):
    state, comp = opt.algorithm_state, opt.algorithm_state.compressor
    sent = [comp.decompress(m.payload, m.ctx).reshape(-1).float() for m in state.last_messages]
    for j, (g, s) in enumerate(zip(grad.split(state.shard_sizes), sent)):
        close(s + state.worker_memory.memory[f"shard{j}"], g + old_worker[j], f"worker pass, shard {j}")
    everyone = hvd.allgather(torch.cat(sent).unsqueeze(0), name="check.sent").mean(dim=0)
    round_ = state.last_round
    for j, mean in round_.means.items():
        close(mean, everyone.split(state.shard_sizes)[j], f"server mean, shard {j}")
        close(round_.replies[j] + state.server_memory.memory[f"shard{j}"], mean + old_server[j],
              f"server pass, shard {j}")
    applied = torch.cat([p.grad.reshape(-1) for p in opt.optimizer.param_groups[0]["params"]])
    assert torch.equal(applied, round_.update), "the optimizer did not step with the server replies"
    replies = torch.cat([round_.replies[j] for j in sorted(round_.replies)] or [torch.zeros(0)])
    gathered = hvd.allgather(replies, name="check.replies")
    assert torch.equal(gathered, round_.update), "the update is not the servers' replies"


def run(compressor, layout):
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                           model.named_parameters(), algorithm="doublesqueeze",
                                           compressor=compressor, ratio=0.2, levels=8, server_layout=layout, seed=3)
    opt.broadcast_state()
    state, loss_fn = opt.algorithm_state, nn.CrossEntropyLoss()
    for step in range(STEPS):
        x, y = batch(hvd.rank(), step)
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).clone()
        sizes = list(enumerate(state.shard_sizes))
        old_worker = [memory(state.worker_memory, f"shard{j}", n) for j, n in sizes]
        old_server = [memory(state.server_memory, f"shard{j}", n) for j, n in sizes]
        opt.step()
        check_step(opt, grad, old_worker, old_server)
    final = flat_params(model)
    everyone = hvd.allgather(final.unsqueeze(0), name="check.params")
    assert all(torch.equal(everyone[0], row) for row in everyone), f"{compressor}/{layout}: replicas differ"
    assert state.worker_memory.residual_norm() > 0, "a lossy compressor left no worker residual"
    return final


def main(np_expected):
    hvd.init()
    assert hvd.size() == np_expected
    for compressor in COMPRESSORS:
        sharded, ps = run(compressor, "sharded"), run(compressor, "ps")
        assert torch.equal(sharded, ps), f"{compressor}: layouts differ by {(sharded - ps).abs().max()}"
        assert (sharded - flat_params(make_model())).abs().max() > 1e-3, f"{compressor}: parameters did not move"
        print(f"rank {hvd.rank()}: {compressor} invariants hold, sharded == ps", flush=True)
    print(f"rank {hvd.rank()}: OK", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
