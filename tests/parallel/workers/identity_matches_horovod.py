"""Identity compressor with H = 1 gives the parameters of stock hvd.DistributedOptimizer."""
import horovod.torch as hvd
import torch
from common import flat_params, make_model, train_steps

import hvd_qsparse
from hvd_qsparse.compression import create

STEPS, ATOL = 6, 1e-6


def stock(compression):
    model = make_model()
    opt = hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                   named_parameters=model.named_parameters(), compression=compression)
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    train_steps(model, opt, hvd.rank(), 0, STEPS)
    return flat_params(model)


def ours(exchange):
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                           model.named_parameters(), compressor="none", local_steps=1,
                                           exchange=exchange)
    opt.broadcast_state()
    train_steps(model, opt, hvd.rank(), 0, STEPS)
    assert opt.bits.total_sent == 32 * sum(p.numel() for p in model.parameters()) * STEPS
    return flat_params(model)


def main():
    hvd.init()
    reference = stock(hvd.Compression.none)
    start = flat_params(make_model())
    assert (reference - start).abs().max() > 1e-3, "training did not move the parameters"
    for exchange in ("auto", "allgather", "allreduce"):
        diff = (ours(exchange) - reference).abs().max().item()
        assert diff <= ATOL, f"exchange={exchange}: max |ours - horovod| = {diff}"
    # Summable hvd_qsparse compressors work inside stock Horovod.
    assert (stock(create("none")) - reference).abs().max().item() <= ATOL
    assert (stock(create("fp16")) - reference).abs().max().item() <= 1e-2
    print(f"rank {hvd.rank()}: OK", flush=True)


if __name__ == "__main__":
    main()
