"""A model that differs across ranks is refused on every rank before any exchange, never a hang.

Rank 1 builds its model with another shape, another parameter count, other names or another
order; for each algorithm (hook-driven H = 1, local steps H = 4 at their first sync, DoubleSqueeze,
GD-SEC) every rank must raise ModelMismatchError naming the difference, and the next, matching
model must then train normally.
"""
import horovod.torch as hvd
import torch
from common import batch
from torch import nn

import hvd_qsparse
from hvd_qsparse.optim import ModelMismatchError

ALGORITHMS = [("qsparse", dict(compressor="topk+sign", ratio=0.3, local_steps=1)),
              ("qsparse", dict(compressor="topk+sign", ratio=0.3, local_steps=4)),
              ("doublesqueeze", dict(compressor="sign")),
              ("gdsec", dict(xi=1.0))]


def build(kind: str, differ: bool) -> nn.Module:
    hidden = 17 if differ and kind == "shape" else 16
    layers = [("fc1", nn.Linear(12, hidden)), ("act", nn.Tanh()), ("fc2", nn.Linear(hidden, 4))]
    if differ and kind == "count":
        layers.insert(2, ("extra", nn.Linear(hidden, hidden)))
    if differ and kind == "name":
        layers[0] = ("first", layers[0][1])
    model = nn.Sequential()
    for name, layer in layers:
        model.add_module(name, layer)
    return model


def params(model: nn.Module, kind: str, differ: bool) -> list:
    """The parameters handed to the optimizer: in reverse order on rank 1 for ``order``."""
    ordered = list(model.parameters())
    return ordered[::-1] if differ and kind == "order" else ordered


def steps(model, opt, count):
    for step in range(count):
        x, y = batch(hvd.rank(), step)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def main():
    hvd.init()
    for kind in ("shape", "count", "name", "order"):
        for algorithm, options in ALGORITHMS:
            differ = hvd.rank() == 1
            model = build(kind, differ)
            opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(params(model, kind, differ), lr=0.1),
                                                   model.named_parameters(), algorithm=algorithm, **options)
            try:
                steps(model, opt, 4)
                raise AssertionError(f"{kind} mismatch under {algorithm} {options} raised nothing")
            except ModelMismatchError as error:
                assert "rank 1" in str(error), str(error)
    model = build("shape", differ=False)
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model.named_parameters(),
                                           compressor="topk+sign", ratio=0.3)
    steps(model, opt, 3)
    print(f"rank {hvd.rank()}: OK", flush=True)


if __name__ == "__main__":
    main()
