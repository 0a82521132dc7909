"""Exact resume mid-delay: ``full N OUT``, ``part N CKPT``, ``resume CKPT N OUT`` (one file per rank),
with the outer Nesterov optimizer, memory decay, a sync delay, mixing and two fragments."""
import sys

import torch
from common import flat_params, make_model, run_resume_mode

import hvd_qsparse


def build():
    model = make_model()
    inner = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt = hvd_qsparse.DistributedOptimizer(inner, model.named_parameters(), compressor="topk+qsgd", ratio=0.25,
                                           levels=4, local_steps=4, warmup_steps=2, seed=5,
                                           outer_optimizer="nesterov", memory_decay=0.9, sync_delay=2, mixing=0.25,
                                           fragments=2)
    return model, opt


def synchronized(model, opt):
    opt.load_synchronized_model()  # applies the rounds still in flight
    return flat_params(model)


def in_delay(opt):
    assert opt.local_sgd_state.pending, "the checkpoint is not taken mid-delay"


if __name__ == "__main__":
    run_resume_mode(build, sys.argv[1], sys.argv[2:], result=synchronized, before_save=in_delay)
