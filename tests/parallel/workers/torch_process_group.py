"""``process_set=[0, 2]`` on the torch.distributed backend, under torchrun with 3 ranks: ranks 0 and 2 run
the algorithm between them (ending equal), rank 1, outside the group, takes plain local steps."""
import sys

for name in ("horovod", "horovod.torch", "horovod.common", "horovod.common.elastic"):
    sys.modules[name] = None

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from common import flat_params, make_model, train_steps  # noqa: E402

import hvd_qsparse  # noqa: E402


def main():
    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    rank = dist.get_rank()
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model.named_parameters(),
                                           backend="torch", process_set=[0, 2], compressor="topk+sign", ratio=0.2,
                                           local_steps=2)
    opt.broadcast_state()
    assert opt.comm.included == (rank != 1) and (opt.comm.size, opt.comm.is_global) == (2, False)
    train_steps(model, opt, rank, 0, 4)
    opt.load_synchronized_model()
    params = flat_params(model)
    gathered = [torch.empty_like(params) for _ in range(3)]
    dist.all_gather(gathered, params)
    assert torch.equal(gathered[0], gathered[2]), "the group's ranks differ"
    alone = make_model()
    train_steps(alone, torch.optim.SGD(alone.parameters(), lr=0.1), 1, 0, 4)
    assert torch.equal(gathered[1], flat_params(alone)), "rank 1 did not take plain local steps"
    assert not torch.equal(gathered[0], gathered[1])
    assert (opt.bits.total_sent > 0) == (rank != 1)
    print(f"rank {rank}: OK", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
