"""GD-SEC checkpoint/resume: ``RHO EC full N OUT``, ``RHO EC part N CKPT``, ``RHO EC resume CKPT N
OUT`` (one file per rank; RHO is the cap ``max_density``, EC ``ec`` or ``ef21``).

Momentum, β < 1 and ξ > 0 make every piece of state matter: the inner optimizer's buffers, ĝ_m,
e_m, the server's view and θ^{k−1}.
"""
import functools
import sys

import torch
from common import flat_params, make_model, run_resume_mode

import hvd_qsparse


def build(max_density, correction):
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                           model.named_parameters(), algorithm="gdsec", beta=0.9, xi=2.0,
                                           max_density=max_density, error_correction=correction == "ec")
    return model, opt


def params_and_bits(model, opt):
    return {"params": flat_params(model), "bits": opt.bits.total_sent}


if __name__ == "__main__":
    run_resume_mode(functools.partial(build, float(sys.argv[1]), sys.argv[2]), sys.argv[3], sys.argv[4:],
                    result=params_and_bits)
