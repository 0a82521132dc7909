"""One rank (deterministic order): identity equals plain SGD; a checkpoint resumes exactly.

``first CKPT OUT``: (1) with the identity compressor, asynchronous Qsparse on one rank is plain
local SGD (x̂ ← x̂ − (x̂ − x) = x); (2) 12 steps of topk+qsgd, final model to ``OUT``; (3) 7 steps,
then the checkpoint (model, optimizer with its window) to ``CKPT``.
``resume CKPT OUT``: a new process and window load ``CKPT`` and take the remaining 5 steps.
The test compares the two ``OUT`` files.
"""
import sys

import horovod.torch as hvd
import torch
from async_common import run_or_abort
from common import flat_params, make_model, train_steps

import hvd_qsparse
from hvd_qsparse import load_checkpoint, save_checkpoint

TOTAL, PART = 12, 7


def build(compressor, local_steps=3, warmup=2):
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                           model.named_parameters(), algorithm="qsparse-async",
                                           compressor=compressor, ratio=0.25, levels=4, local_steps=local_steps,
                                           warmup_steps=warmup, seed=5)
    return model, opt


def identity_is_plain_sgd():
    model, opt = build("none", local_steps=3, warmup=0)
    opt.broadcast_state()
    train_steps(model, opt, 0, 0, 10)
    opt.finish()
    plain = make_model()
    train_steps(plain, torch.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9), 0, 0, 10)
    diff = (flat_params(model) - flat_params(plain)).abs().max().item()
    assert (flat_params(plain) - flat_params(make_model())).abs().max() > 1e-2, "training did not move"
    assert diff <= 1e-6, f"identity async vs plain SGD: max diff {diff}"


def first(ckpt, out):
    identity_is_plain_sgd()
    model, opt = build("topk+qsgd")
    opt.broadcast_state()
    train_steps(model, opt, 0, 0, TOTAL)
    opt.finish()
    torch.save(flat_params(model), out)
    model, opt = build("topk+qsgd")
    opt.broadcast_state()
    train_steps(model, opt, 0, 0, PART)
    state = opt.state_dict()
    assert state["hvd_qsparse"]["state"]["window"]["x_hat"].numel() == opt.flat_numel(), "host state lacks the window"
    save_checkpoint(ckpt, model, opt)
    opt.finish()


def resume(ckpt, out):
    model, opt = build("topk+qsgd")
    load_checkpoint(ckpt, model, opt)
    train_steps(model, opt, 0, opt.step_count, TOTAL - PART)
    opt.finish()
    torch.save(flat_params(model), out)


def main(mode, ckpt, out):
    hvd.init()
    assert hvd.size() == 1, "this worker replays a deterministic single-rank run"
    {"first": first, "resume": resume}[mode](ckpt, out)
    print(f"rank {hvd.rank()}: OK {mode}", flush=True)


if __name__ == "__main__":
    run_or_abort(main, *sys.argv[1:])
