"""Model-averaging rounds with an outer optimizer, delay, mixing and fragments, under real ranks.

``equivalence``: outer SGD (lr 1, no momentum) and an explicit τ = 0 give today's Qsparse to 1e-6.
``delay TAU ALPHA F``: with the identity compressor, plain SGD and H = 4, every applied round
leaves x̂ equal on every rank and equal to the mean of the ranks' x_s, and the model at
x_{s+τ} + (1 − α)(x̂ − x_s); each fragment's x̂ moves exactly once per H steps.
"""
import functools
import sys

import horovod.torch as hvd
import torch
from common import batch, flat_params, make_model, train_steps
from torch import nn

import hvd_qsparse

H = 4
LR = 0.1


def qsparse(model, **options):
    inner = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    opt = hvd_qsparse.DistributedOptimizer(inner, model.named_parameters(), compressor="topk+sign", ratio=0.25,
                                           local_steps=H, warmup_steps=2, seed=3, **options)
    opt.broadcast_state()
    return opt


def run(rank, **options):
    model = make_model()
    opt = qsparse(model, **options)
    train_steps(model, opt, rank, 0, 13)
    opt.load_synchronized_model()
    return flat_params(model)


def equivalence(rank):
    today = run(rank)
    for options in ({"outer_optimizer": functools.partial(torch.optim.SGD, lr=1.0)},
                    {"outer_optimizer": "sgd", "outer_lr": 1.0, "outer_momentum": 0.0},
                    {"sync_delay": 0, "mixing": 0.0, "fragments": 1, "memory_decay": 1.0}):
        other = run(rank, **options)
        diff = float((today - other).abs().max())
        assert diff <= 1e-6, f"{options}: max diff {diff} from today's rule"
    nesterov = run(rank, outer_optimizer="nesterov")
    assert float((today - nesterov).abs().max()) > 1e-4, "the outer Nesterov optimizer changed nothing"


def x_hat_flat(opt):
    return torch.cat([opt.local_sgd_state.x_hat[n].reshape(-1) for n, _ in opt.named_params])


def delay(rank, tau, alpha, fragments):
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=LR), model.named_parameters(),
                                           compressor="none", local_steps=H, sync_delay=tau, mixing=alpha,
                                           fragments=fragments)
    opt.broadcast_state()
    members = opt.plan.members
    assert sorted(i for m in members for i in m) == list(range(len(opt.named_params))), members
    owner = {opt.named_params[i][0]: f for f, m in enumerate(members) for i in m}
    origins, moved = {}, {name: [] for name in owner}
    loss_fn = nn.CrossEntropyLoss()
    for step in range(4 * H + 1):
        x, y = batch(rank, step)
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        before = {n: x.clone() for n, x in opt.local_sgd_state.x_hat.items()}
        local = {n: (p - LR * p.grad).detach().clone() for n, p in opt.named_params}  # the inner step alone
        opt.step()
        state = opt.local_sgd_state
        gathered = hvd.allgather(x_hat_flat(opt).unsqueeze(0))
        assert torch.equal(gathered[0], gathered[1]), f"step {step}: x_hat differs across ranks"
        for f in state.fragments_due(step):  # x_s: the model after step s's local update
            for i in members[f]:
                name, param = opt.named_params[i]
                origins[name] = (step, (local[name] if tau == 0 else param).detach().clone())
        for name, param in opt.named_params:
            if before and not torch.equal(before[name], state.x_hat[name]):
                moved[name].append(step)
                start, x_s = origins.pop(name)
                mean = hvd.allreduce(x_s, op=hvd.Average, name=f"check.{name}.{step}")
                assert step == start + tau, f"{name}: applied at {step}, started at {start}, tau={tau}"
                assert torch.allclose(state.x_hat[name], mean, atol=1e-6), f"{name}: x_hat is not the mean of x_s"
                expected = local[name] + (1 - alpha) * (state.x_hat[name] - x_s)
                assert torch.allclose(param, expected, atol=1e-6), f"{name} at {step}: model off the rule"
    for name, steps in moved.items():
        offset = owner[name] * H // fragments
        # (step 0 sets x̂ from the model before its round, so a move there is not seen)
        expected = [t + tau for t in range(4 * H + 1) if (t + 1) % H == offset and 0 < t + tau <= 4 * H]
        assert steps == expected, f"{name} (fragment {owner[name]}): x_hat moved at {steps}, expected {expected}"


def main(mode, *args):
    hvd.init()
    if mode == "equivalence":
        equivalence(hvd.rank())
    else:
        delay(hvd.rank(), int(args[0]), float(args[1]), int(args[2]))
    print(f"rank {hvd.rank()}: OK", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
