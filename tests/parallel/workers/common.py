"""What the worker scripts share: a small seeded model and per-(rank, step) batches."""
import torch
from torch import nn


def make_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 4))


def batch(rank: int, step: int):
    """A batch that depends only on (rank, step), so any run can replay any step."""
    gen = torch.Generator().manual_seed(1000 * rank + step)
    return torch.randn(16, 12, generator=gen), torch.randint(0, 4, (16,), generator=gen)


def train_steps(model, opt, rank: int, first: int, count: int):
    loss_fn = nn.CrossEntropyLoss()
    for step in range(first, first + count):
        x, y = batch(rank, step)
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()


def flat_params(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def run_resume_mode(build, mode: str, rest, result=lambda model, opt: flat_params(model), before_save=None):
    """One process of a resume check, on every rank (one file per rank):

    ``full N OUT`` trains N steps and saves ``result(model, opt)``; ``part N CKPT`` trains N
    steps and checkpoints (after ``before_save(opt)``, which may assert where it stands);
    ``resume CKPT N OUT`` loads the checkpoint into a fresh ``build()``, trains N more steps
    and saves ``result``.
    """
    import horovod.torch as hvd

    from hvd_qsparse import load_checkpoint, save_checkpoint
    hvd.init()
    rank = hvd.rank()
    model, opt = build()
    if mode == "resume":
        load_checkpoint(f"{rest[0]}.{rank}", model, opt)
        train_steps(model, opt, rank, opt.step_count, int(rest[1]))
        torch.save(result(model, opt), f"{rest[2]}.{rank}")
        return
    opt.broadcast_state()
    train_steps(model, opt, rank, 0, int(rest[0]))
    if mode == "part":
        if before_save is not None:
            before_save(opt)
        save_checkpoint(f"{rest[1]}.{rank}", model, opt)
    else:
        torch.save(result(model, opt), f"{rest[1]}.{rank}")
