"""process_set: the algorithm runs over ranks 0 and 1 only; rank 2 takes plain local steps.

Three ranks. With the identity compressor ours matches stock Horovod with the same process set on
every rank (1e-6); with topk+sign (H = 1 and H = 2) ranks 0 and 1 agree bit for bit and rank 2
matches a plain local SGD run.
"""
import horovod.torch as hvd
import torch
from common import flat_params, make_model, train_steps

import hvd_qsparse

PAIR = hvd.ProcessSet([0, 1])


def run(make):
    model = make_model()
    opt = make(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    train_steps(model, opt, hvd.rank(), 0, 6)
    return flat_params(model)


def main():
    hvd.init(process_sets=[PAIR])
    stock = run(lambda m, o: hvd.DistributedOptimizer(o, named_parameters=m.named_parameters(), process_set=PAIR))
    ours = run(lambda m, o: hvd_qsparse.DistributedOptimizer(o, m.named_parameters(), compressor="none",
                                                             process_set=PAIR))
    assert (stock - ours).abs().max().item() <= 1e-6, f"identity with a process set: {(stock - ours).abs().max()}"
    local = run(lambda m, o: o)
    for local_steps in (1, 2):
        lossy = run(lambda m, o: hvd_qsparse.DistributedOptimizer(o, m.named_parameters(), compressor="topk+sign",
                                                                  ratio=0.3, local_steps=local_steps,
                                                                  process_set=PAIR))
        everyone = hvd.allgather(lossy.unsqueeze(0), name=f"ps.check{local_steps}")
        assert torch.equal(everyone[0], everyone[1]), "ranks 0 and 1 disagree"
        assert not torch.equal(everyone[0], everyone[2]), "rank 2 took part in the exchange"
        if hvd.rank() == 2:
            assert torch.equal(lossy, local), "rank 2 outside the set did not take plain local steps"
    print(f"rank {hvd.rank()}: OK", flush=True)


if __name__ == "__main__":
    main()
