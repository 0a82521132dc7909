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
