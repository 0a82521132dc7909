"""Checkpoint/resume: ``full N OUT``, ``part N CKPT``, ``resume CKPT N OUT`` (one file per rank)."""
import sys

import horovod.torch as hvd
import torch
from common import flat_params, make_model, train_steps

import hvd_qsparse
from hvd_qsparse import load_checkpoint, save_checkpoint


def build(compressor, local_steps):
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                           model.named_parameters(), compressor=compressor, ratio=0.25,
                                           levels=4, local_steps=local_steps, warmup_steps=2, seed=5)
    return model, opt


def main(compressor, local_steps, mode, *rest):
    hvd.init()
    rank = hvd.rank()
    model, opt = build(compressor, int(local_steps))
    if mode == "resume":
        load_checkpoint(f"{rest[0]}.{rank}", model, opt)
        train_steps(model, opt, rank, opt.local_sgd_state.step, int(rest[1]))
        torch.save(flat_params(model), f"{rest[2]}.{rank}")
        return
    opt.broadcast_state()
    train_steps(model, opt, rank, 0, int(rest[0]))
    if mode == "part":
        save_checkpoint(f"{rest[1]}.{rank}", model, opt)
    else:
        torch.save(flat_params(model), f"{rest[1]}.{rank}")


if __name__ == "__main__":
    main(*sys.argv[1:])
