"""GD-SEC checkpoint/resume: ``full N OUT``, ``part N CKPT``, ``resume CKPT N OUT`` (one file per rank).

Momentum, β < 1 and ξ > 0 make every piece of state matter: the inner optimizer's buffers, ĝ_m,
e_m, the server's view and θ^{k−1}.
"""
import sys

import torch
from common import flat_params, make_model, run_resume_mode

import hvd_qsparse


def build():
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                           model.named_parameters(), algorithm="gdsec", beta=0.9, xi=2.0)
    return model, opt


def params_and_bits(model, opt):
    return {"params": flat_params(model), "bits": opt.bits.total_sent}


if __name__ == "__main__":
    run_resume_mode(build, sys.argv[1], sys.argv[2:], result=params_and_bits)
