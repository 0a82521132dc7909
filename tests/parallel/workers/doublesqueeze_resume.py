"""Checkpoint/resume of DoubleSqueeze in one launch: 12 steps straight, against 7 steps, a
checkpoint written to disk (one file per rank, both memories in the optimizer's state), and 5
more steps by a freshly built model and optimizer that load it. ``COMPRESSOR LAYOUT DIR
[SERVER_RATIO|none [SCOPE]]``."""
import sys

import horovod.torch as hvd
import torch
from common import flat_params, make_model, train_steps

import hvd_qsparse
from hvd_qsparse import load_checkpoint, save_checkpoint

FIRST, REST = 7, 5


def build(compressor, layout, server_ratio=None, scope="flat"):
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                           model.named_parameters(), algorithm="doublesqueeze",
                                           compressor=compressor, ratio=0.25, levels=4, server_layout=layout, seed=5,
                                           server_ratio=server_ratio, shard_scope=scope)
    return model, opt


def main(compressor, layout, folder, server_ratio=None, scope="flat"):
    hvd.init()
    rank = hvd.rank()
    server_ratio = None if server_ratio in (None, "none") else float(server_ratio)
    model, opt = build(compressor, layout, server_ratio, scope)
    opt.broadcast_state()
    train_steps(model, opt, rank, 0, FIRST + REST)
    straight = flat_params(model)

    model, opt = build(compressor, layout, server_ratio, scope)
    opt.broadcast_state()
    train_steps(model, opt, rank, 0, FIRST)
    saved = opt.state_dict()
    assert saved["hvd_qsparse"]["state"]["worker_memory"]["memory"], "no worker memory in the checkpoint"
    serves = layout == "sharded" or rank == 0
    assert bool(saved["hvd_qsparse"]["state"]["server_memory"]["memory"]) == serves, "server memory not where it is served"
    path = f"{folder}/ckpt.{rank}"
    save_checkpoint(path, model, opt)

    model, opt = build(compressor, layout, server_ratio, scope)
    load_checkpoint(path, model, opt)
    train_steps(model, opt, rank, opt.step_count, REST)
    resumed = flat_params(model)
    assert (straight - flat_params(make_model())).abs().max() > 1e-3, "training did not move the parameters"
    assert torch.equal(straight, resumed), f"rank {rank}: resumed run differs by {(straight - resumed).abs().max()}"
    if server_ratio is not None:  # a checkpoint of another server ratio is refused
        model, opt = build(compressor, layout)
        try:
            load_checkpoint(path, model, opt)
        except ValueError as error:
            assert "server_params" in str(error), error
        else:
            raise AssertionError("a checkpoint of another server ratio loaded")
    print(f"rank {rank}: OK {compressor} {layout}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
