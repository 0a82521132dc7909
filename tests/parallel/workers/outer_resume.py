"""Exact resume mid-delay: ``full N OUT``, ``part N CKPT``, ``resume CKPT N OUT`` (one file per rank),
with the outer Nesterov optimizer, memory decay, a sync delay, mixing and two fragments."""
import sys

import horovod.torch as hvd
import torch
from common import flat_params, make_model, train_steps

import hvd_qsparse
from hvd_qsparse import load_checkpoint, save_checkpoint


def build():
    model = make_model()
    inner = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt = hvd_qsparse.DistributedOptimizer(inner, model.named_parameters(), compressor="topk+qsgd", ratio=0.25,
                                           levels=4, local_steps=4, warmup_steps=2, seed=5,
                                           outer_optimizer="nesterov", memory_decay=0.9, sync_delay=2, mixing=0.25,
                                           fragments=2)
    return model, opt


def main(mode, *rest):
    hvd.init()
    rank = hvd.rank()
    model, opt = build()
    if mode == "resume":
        load_checkpoint(f"{rest[0]}.{rank}", model, opt)
        train_steps(model, opt, rank, opt.local_sgd_state.step, int(rest[1]))
        opt.load_synchronized_model()
        torch.save(flat_params(model), f"{rest[2]}.{rank}")
        return
    opt.broadcast_state()
    train_steps(model, opt, rank, 0, int(rest[0]))
    if mode == "part":
        assert opt.local_sgd_state.pending, "the checkpoint is not taken mid-delay"
        save_checkpoint(f"{rest[1]}.{rank}", model, opt)
    else:
        opt.load_synchronized_model()
        torch.save(flat_params(model), f"{rest[1]}.{rank}")


if __name__ == "__main__":
    main(*sys.argv[1:])
