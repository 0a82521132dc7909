"""GradScaler and non-finite gradients under real ranks, for H = 1 (hooks) and H > 1 (local steps).

Usage: dropin_amp.py H

- Loss scaling changes nothing: with GradScaler (init 1024, growing every 3 steps, so the scale
  changes and the hooks' exchange is redone), topk+sign trains to the same parameters as
  without a scaler (1e-6), so do DoubleSqueeze and GD-SEC, and the identity compressor matches
  stock Horovod without a scaler.
- An overflow on rank 1 only (its loss times inf) is skipped on both ranks: parameters, memories
  and step counters untouched, rank 1's scaler backs off, training goes on with no hang.
- Horovod's recipe (synchronize; unscale_; clip; skip_synchronize: scaler.step) with an overflow
  on rank 1 matches stock Horovod's recipe (identity compressor, H = 1).
- Without a scaler, NaN on rank 1 raises the same NonFiniteGradientError on both ranks, naming
  rank 1, and leaves the memories as they were; the next step trains normally.
"""
import sys

import horovod.torch as hvd
import torch
from common import batch, flat_params, make_model

import hvd_qsparse
from hvd_qsparse.optim import NonFiniteGradientError

STEPS, ATOL, BAD_STEP = 8, 1e-6, 3
LOSS = torch.nn.CrossEntropyLoss()


def build(compressor, local_steps, stock=False):
    model = make_model()
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    inner = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    if stock:
        return model, hvd.DistributedOptimizer(inner, named_parameters=model.named_parameters())
    return model, hvd_qsparse.DistributedOptimizer(inner, model.named_parameters(), compressor=compressor,
                                                   ratio=0.3, local_steps=local_steps)


def loss_at(model, step, poison=None):
    x, y = batch(hvd.rank(), step)
    loss = LOSS(model(x), y)
    if poison is not None and step == BAD_STEP and hvd.rank() == 1:
        loss = loss * poison
    return loss


def train(model, opt, scaler=None, recipe=False, poison=None, watch=None):
    for step in range(STEPS):
        opt.zero_grad()
        loss = loss_at(model, step, poison)
        if scaler is None:
            loss.backward()
            opt.step()
            continue
        before = (flat_params(model), opt.step_count if hasattr(opt, "step_count") else None)
        scaler.scale(loss).backward()
        if recipe:
            opt.synchronize()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            with opt.skip_synchronize():
                scaler.step(opt)
        else:
            scaler.step(opt)
        scaler.update()
        if watch is not None and step == BAD_STEP:
            watch(model, opt, scaler, before)
    return flat_params(model)


def scaler(growth_interval=3):
    return torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=growth_interval)


def check_skipped(model, opt, sc, before):
    params, count = before
    assert torch.equal(flat_params(model), params), "the overflow step moved the parameters"
    assert opt.step_count == count, f"the overflow step counted: {count} -> {opt.step_count}"
    if hvd.rank() == 1:
        assert sc.get_scale() == 512.0, f"rank 1's scaler did not back off: scale {sc.get_scale()}"


def main(local_steps):
    hvd.init()
    rank = hvd.rank()
    plain = train(*build("topk+sign", local_steps))
    scaled = train(*build("topk+sign", local_steps), scaler=scaler())
    assert (plain - scaled).abs().max().item() <= ATOL, f"GradScaler changed topk+sign: {(plain - scaled).abs().max()}"
    if local_steps == 1:
        for algorithm, options in (("doublesqueeze", dict(compressor="sign")), ("gdsec", dict(xi=1.0))):
            runs = []
            for with_scaler in (False, True):
                model = make_model()
                opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                                       model.named_parameters(), algorithm=algorithm, **options)
                opt.broadcast_state()
                runs.append(train(model, opt, scaler=scaler() if with_scaler else None))
            assert (runs[0] - runs[1]).abs().max().item() <= ATOL, f"GradScaler changed {algorithm}"
        stock = train(*build(None, 1, stock=True))
        mine = train(*build("none", 1), scaler=scaler())
        assert (stock - mine).abs().max().item() <= ATOL, "GradScaler step differs from dense stock Horovod"

    model, opt = build("topk+sign", local_steps)
    final = train(model, opt, scaler=scaler(100), poison=float("inf"), watch=check_skipped)
    assert torch.isfinite(final).all(), "an overflow reached the parameters"
    opt.load_synchronized_model()
    everyone = hvd.allgather(flat_params(model).unsqueeze(0), name="amp.agree")
    assert torch.equal(everyone[0], everyone[1]), "ranks disagree after an overflow step"

    if local_steps == 1:
        ours = train(*build("none", 1), scaler=scaler(100), recipe=True, poison=float("inf"))
        theirs = train(*build(None, 1, stock=True), scaler=scaler(100), recipe=True, poison=float("inf"))
        assert (ours - theirs).abs().max().item() <= ATOL, "Horovod's AMP recipe differs from stock Horovod"

    model, opt = build("topk+sign", local_steps)
    memory = None
    try:
        for step in range(BAD_STEP + local_steps + 1):
            memory = {n: m.clone() for n, m in opt.local_sgd_state.error_feedback.memory.items()}
            opt.zero_grad()
            loss_at(model, step, poison=float("nan")).backward()
            opt.step()
        raise AssertionError("NaN on rank 1 raised nothing")
    except NonFiniteGradientError as error:
        assert "rank 1" in str(error), f"error does not name rank 1: {error}"
        kept = opt.local_sgd_state.error_feedback.memory
        assert kept.keys() == memory.keys() and all(torch.equal(kept[n], memory[n]) for n in kept), \
            "a refused step changed the memory"
        print(f"rank {rank}: refused with: {str(error)[:90]}", flush=True)
    if local_steps == 1:
        train(model, opt)  # the next steps train normally, on both ranks
    print(f"rank {rank}: OK H={local_steps}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
