"""Checkpoint/resume of Qsparse with ``exchange="sharded"`` in one launch: 12 steps straight,
against 7 steps, a checkpoint per rank (this rank's memory and its owner memories in the
optimizer's state) and 5 more steps by a fresh model and optimizer. ``COMPRESSOR H DIR``;
a checkpoint cannot be resumed with another exchange."""
import sys

import horovod.torch as hvd
import torch
from common import flat_params, make_model, train_steps

import hvd_qsparse
from hvd_qsparse import load_checkpoint, save_checkpoint

FIRST, REST = 7, 5


def build(compressor, local_steps, exchange="sharded"):
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                           model.named_parameters(), compressor=compressor, ratio=0.25,
                                           local_steps=local_steps, exchange=exchange, seed=5,
                                           server_ratio=0.5 if compressor == "topk" and exchange == "sharded" else None)
    return model, opt


def main(compressor, local_steps, folder):
    hvd.init()
    rank, local_steps = hvd.rank(), int(local_steps)
    model, opt = build(compressor, local_steps)
    opt.broadcast_state()
    train_steps(model, opt, rank, 0, FIRST + REST)
    straight = flat_params(model)

    model, opt = build(compressor, local_steps)
    opt.broadcast_state()
    train_steps(model, opt, rank, 0, FIRST)
    saved = opt.state_dict()["hvd_qsparse"]["state"]
    assert saved["server_memory"]["memory"], f"rank {rank}: no owner memory in the checkpoint"
    assert all(key.endswith(f"@{rank}") for key in saved["server_memory"]["memory"]), saved["server_memory"]
    path = f"{folder}/ckpt.{rank}"
    save_checkpoint(path, model, opt)

    model, opt = build(compressor, local_steps)
    load_checkpoint(path, model, opt)
    train_steps(model, opt, rank, opt.step_count, REST)
    resumed = flat_params(model)
    assert (straight - flat_params(make_model())).abs().max() > 1e-3, "training did not move the parameters"
    assert torch.equal(straight, resumed), f"rank {rank}: resumed run differs by {(straight - resumed).abs().max()}"

    model, opt = build(compressor, local_steps, exchange="allgather")
    try:
        load_checkpoint(path, model, opt)
    except ValueError as error:
        assert "sharded" in str(error), error
    else:
        raise AssertionError("a sharded checkpoint loaded into an allgather optimizer")
    print(f"rank {rank}: OK {compressor} H={local_steps}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
