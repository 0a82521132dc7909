"""RI-SGD against its special cases on real ranks; asserts on every rank.

- q = 1 equals plain local SGD written by hand (each rank steps on its own chunk, and
  ``hvd.allreduce(Average)`` averages the parameters every τ steps), momentum included.
- τ = 1, q = 1 with the identity compressor equals stock ``hvd.DistributedOptimizer``.
- The data: with q = 1 the ranks' epochs are disjoint and cover the data set; with q = 2 every
  sample is in exactly two ranks' epochs.
- A compressed average (topk+sign, q = 2): local steps send nothing, every sync leaves all ranks
  with the same model and counts exactly the payload bytes.
"""
import horovod.torch as hvd
import torch
from common import flat_params, make_model

import hvd_qsparse

N, B, LR, MOMENTUM, ATOL = 240, 10, 0.1, 0.9, 1e-5


def dataset():
    gen = torch.Generator().manual_seed(42)
    return torch.randn(N, 12, generator=gen), torch.randint(0, 4, (N,), generator=gen)


def risgd(model, **kwargs):
    inner = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    opt = hvd_qsparse.DistributedOptimizer(inner, model.named_parameters(), algorithm="risgd", seed=3, **kwargs)
    opt.broadcast_state()
    return opt


def step(model, opt, x, y, batch):
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
    opt.step()


def batches_of(opt, y, epochs):
    sampler = opt.make_sampler(y, B)
    return [b for e in range(epochs) for b in sampler.epoch_batches(e)]


def check_q1_is_plain_local_sgd(x, y, tau):
    model = make_model()
    opt = risgd(model, compressor="none", local_steps=tau, redundancy=1)
    batches = batches_of(opt, y, 2)
    ref_model = make_model()
    ref = torch.optim.SGD(ref_model.parameters(), lr=LR, momentum=MOMENTUM)
    for t, batch in enumerate(batches):
        step(model, opt, x, y, batch)
        step(ref_model, ref, x, y, batch)
        if (t + 1) % tau == 0:
            with torch.no_grad():
                for i, p in enumerate(ref_model.parameters()):
                    p.copy_(hvd.allreduce(p, op=hvd.Average, name=f"ref.{tau}.{t}.{i}"))
            diff = (flat_params(model) - flat_params(ref_model)).abs().max().item()
            assert diff <= ATOL, f"tau={tau} step {t}: max |risgd - local sgd| = {diff}"
    assert (flat_params(model) - flat_params(make_model())).abs().max() > 1e-2, "training did not move"
    rounds = len(batches) // tau
    assert opt.rounds_done == rounds and opt.bits.total_sent == rounds * 32 * opt.flat_numel()


def check_tau1_is_synchronous_sgd(x, y):
    model = make_model()
    opt = risgd(model, compressor="none", local_steps=1, redundancy=1)
    ref_model = make_model()
    ref = hvd.DistributedOptimizer(torch.optim.SGD(ref_model.parameters(), lr=LR, momentum=MOMENTUM),
                                   named_parameters=ref_model.named_parameters())
    for batch in batches_of(opt, y, 1):
        step(model, opt, x, y, batch)
        step(ref_model, ref, x, y, batch)
    diff = (flat_params(model) - flat_params(ref_model)).abs().max().item()
    assert diff <= 1e-6, f"tau=1 q=1 identity: max |risgd - synchronous sgd| = {diff}"


def check_data_placement(y):
    for q in (1, 2):
        opt = risgd(make_model(), compressor="none", redundancy=q)
        mine = torch.cat(batches_of(opt, y, 1))
        assert len(mine) == len(set(mine.tolist())), "a sample repeated within a worker's epoch"
        counts = torch.bincount(torch.cat(hvd.allgather_object(mine, name=f"placement.{q}")), minlength=N)
        assert torch.all(counts == q), f"q={q}: samples held {counts.unique().tolist()} times, expected {q}"


def check_compressed_average(x, y, tau=3):
    model = make_model()
    opt = risgd(model, compressor="topk+sign", ratio=0.25, local_steps=tau, redundancy=2)
    payload_bits = 8 * sum(opt.local_sgd_state.compressor.payload_nbytes(g.numel)  # one payload per fused bucket
                           for g in opt.fusion.groups(opt.named_params))
    for t, batch in enumerate(batches_of(opt, y, 1)):
        step(model, opt, x, y, batch)
        if (t + 1) % tau:
            assert opt.bits.bits_at(t) == 0, f"local step {t} sent bits"
            continue
        assert opt.bits.bits_at(t) == payload_bits, (t, opt.bits.bits_at(t), payload_bits)
        everyone = hvd.allgather(flat_params(model).unsqueeze(0), name=f"compressed.{t}")
        assert all(torch.equal(everyone[0], row) for row in everyone), f"step {t}: ranks differ after the sync"


def main():
    hvd.init()
    torch.set_num_threads(1)
    x, y = dataset()
    for tau in (1, 4):
        check_q1_is_plain_local_sgd(x, y, tau)
    check_tau1_is_synchronous_sgd(x, y)
    check_data_placement(y)
    check_compressed_average(x, y)
    print(f"rank {hvd.rank()}: OK", flush=True)


if __name__ == "__main__":
    main()
