"""GD-SEC checkpoint/resume: ``full N OUT``, ``part N CKPT``, ``resume CKPT N OUT`` (one file per rank).

Momentum, β < 1 and ξ > 0 make every piece of state matter: the inner optimizer's buffers, ĝ_m,
e_m, the server's view and θ^{k−1}.
"""
import sys

import horovod.torch as hvd
import torch
from common import flat_params, make_model, train_steps

import hvd_qsparse
from hvd_qsparse import load_checkpoint, save_checkpoint


def build():
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                           model.named_parameters(), algorithm="gdsec", beta=0.9, xi=2.0)
    return model, opt


def main(mode, *rest):
    hvd.init()
    rank = hvd.rank()
    model, opt = build()
    if mode == "resume":
        load_checkpoint(f"{rest[0]}.{rank}", model, opt)
        train_steps(model, opt, rank, opt.step_count, int(rest[1]))
        torch.save({"params": flat_params(model), "bits": opt.bits.total_sent}, f"{rest[2]}.{rank}")
        return
    opt.broadcast_state()
    train_steps(model, opt, rank, 0, int(rest[0]))
    if mode == "part":
        save_checkpoint(f"{rest[1]}.{rank}", model, opt)
    else:
        torch.save({"params": flat_params(model), "bits": opt.bits.total_sent}, f"{rest[1]}.{rank}")


if __name__ == "__main__":
    main(*sys.argv[1:])
