"""Checkpoint/resume of DoubleSqueeze: ``COMPRESSOR LAYOUT full N OUT``, ``... part N CKPT``,
``... resume CKPT N OUT`` (one file per rank; both memories travel in the optimizer's state)."""
import sys

import horovod.torch as hvd
import torch
from common import flat_params, make_model, train_steps

import hvd_qsparse


def build(compressor, layout):
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                           model.named_parameters(), algorithm="doublesqueeze",
                                           compressor=compressor, ratio=0.25, levels=4, server_layout=layout, seed=5)
    return model, opt


def main(compressor, layout, mode, *rest):
    hvd.init()
    rank = hvd.rank()
    model, opt = build(compressor, layout)
    if mode == "resume":
        state = torch.load(f"{rest[0]}.{rank}", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        train_steps(model, opt, rank, opt.step_count, int(rest[1]))
        torch.save(flat_params(model), f"{rest[2]}.{rank}")
        return
    opt.broadcast_state()
    train_steps(model, opt, rank, 0, int(rest[0]))
    if mode == "part":
        saved = opt.state_dict()
        assert saved["algorithm"]["worker_memory"]["memory"], "no worker memory in the checkpoint"
        serves = layout == "sharded" or rank == 0
        assert bool(saved["algorithm"]["server_memory"]["memory"]) == serves, "server memory not where served"
        torch.save({"model": model.state_dict(), "optimizer": saved}, f"{rest[1]}.{rank}")
    else:
        torch.save(flat_params(model), f"{rest[1]}.{rank}")


if __name__ == "__main__":
    main(*sys.argv[1:])
