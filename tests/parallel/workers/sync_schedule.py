"""Local steps call no collective and count no bit; after every sync all ranks agree.

Every Horovod collective is wrapped by a counting spy (the real call still happens).
"""
import sys

import horovod.torch as hvd
import torch
from common import batch, make_model

import hvd_qsparse

COLLECTIVES = ["allreduce", "allreduce_async", "allgather", "allgather_async", "alltoall", "alltoall_async",
               "broadcast", "broadcast_async", "grouped_allreduce_async", "grouped_allgather_async"]
CALLS = []


def spy(name, real):
    def counted(*args, **kwargs):
        CALLS.append(name)
        return real(*args, **kwargs)
    return counted


def main(compressor, local_steps, warmup):
    hvd.init()
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model.named_parameters(),
                                           compressor=compressor, ratio=0.2, levels=8,
                                           local_steps=local_steps, warmup_steps=warmup)
    opt.broadcast_state()
    for name in COLLECTIVES:
        setattr(hvd, name, spy(name, getattr(hvd, name)))
    # one payload per fused bucket (the model is smaller than a bucket: one payload in all)
    groups = opt.fusion.groups(opt.named_params)
    assert len(groups) == 1, groups
    expected_bytes = sum(opt.local_sgd_state.compressor.payload_nbytes(g.numel) for g in groups)
    loss_fn = torch.nn.CrossEntropyLoss()
    for step in range(10):
        CALLS.clear()
        x, y = batch(hvd.rank(), step)
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        calls, bits = list(CALLS), opt.bits.bits_at(step)
        dense = step < warmup
        syncs = dense or local_steps == 1 or (step + 1) % local_steps == 0
        if not syncs:
            assert calls == [] and bits == 0, f"local step {step}: collectives {calls}, bits {bits}"
            continue
        assert len(calls) == 1, f"step {step}: expected one fused collective, got {calls}"
        want = 32 * sum(p.numel() for p in model.parameters()) if dense else 8 * expected_bytes
        assert bits == want, f"step {step}: counted {bits} bits, payloads hold {want}"
        flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        everyone = hvd.allgather(flat.unsqueeze(0), name=f"check.{step}")
        assert all(torch.equal(everyone[0], row) for row in everyone), f"step {step}: ranks differ"
    print(f"rank {hvd.rank()}: OK {compressor} H={local_steps} warmup={warmup}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
