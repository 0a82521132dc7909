"""Checkpoint/resume: ``full N OUT``, ``part N CKPT``, ``resume CKPT N OUT`` (one file per rank)."""
import functools
import sys

import torch
from common import make_model, run_resume_mode

import hvd_qsparse


def build(compressor, local_steps):
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                           model.named_parameters(), compressor=compressor, ratio=0.25,
                                           levels=4, local_steps=local_steps, warmup_steps=2, seed=5)
    return model, opt


if __name__ == "__main__":
    compressor, local_steps, mode, *rest = sys.argv[1:]
    run_resume_mode(functools.partial(build, compressor, int(local_steps)), mode, rest)
