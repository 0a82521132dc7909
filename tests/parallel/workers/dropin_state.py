"""The wrapper as a torch optimizer: its state dict, Horovod's broadcast of it, add_param_group.

- ``state_dict()`` is torch's format plus one key; ``hvd.broadcast_optimizer_state`` works before
  any step (the ranks' learning rates and momentum differ at first: afterwards they are rank 0's,
  and the broadcast took no algorithm step on any rank) and after steps (momentum buffers).
- A plain torch optimizer checkpoint loads with a warning; the algorithm starts fresh.
- ``add_param_group``: a new layer's parameters join the exchange on every rank.
"""
import warnings

import horovod.torch as hvd
import torch
from common import batch, flat_params
from torch import nn

import hvd_qsparse

LOSS = nn.CrossEntropyLoss()


def model_and_opt(compressor="topk+sign", local_steps=1, lr=0.1):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 4))
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9),
                                           model.named_parameters(), compressor=compressor, ratio=0.3,
                                           local_steps=local_steps)
    return model, opt


def train(model, opt, steps, first=0):
    for step in range(first, first + steps):
        x, y = batch(hvd.rank(), step)
        opt.zero_grad()
        LOSS(model(x), y).backward()
        opt.step()


def same_everywhere(tensor: torch.Tensor, what: str) -> None:
    everyone = hvd.allgather(tensor.detach().reshape(1, -1).float(), name=f"same.{what}")
    assert all(torch.equal(everyone[0], row) for row in everyone), f"{what} differs across ranks"


def broadcast_state():
    model, opt = model_and_opt(lr=0.1 if hvd.rank() == 0 else 0.7)
    assert isinstance(opt, torch.optim.Optimizer)
    state = opt.state_dict()
    assert {"state", "param_groups", "hvd_qsparse"} <= set(state), f"state_dict keys {sorted(state)}"
    hvd.broadcast_optimizer_state(opt, root_rank=0)
    assert opt.param_groups[0]["lr"] == 0.1, "broadcast_optimizer_state left this rank's learning rate"
    assert opt.step_count == 0 and not opt.bits.history, "broadcasting the state took an algorithm step"
    train(model, opt, 4)
    if hvd.rank() == 1:
        for value in opt.state.values():
            value["momentum_buffer"].add_(1.0)
    hvd.broadcast_optimizer_state(opt, root_rank=0)
    same_everywhere(torch.cat([v["momentum_buffer"].reshape(-1) for v in opt.state.values()]), "momentum")
    assert opt.step_count == 4
    train(model, opt, 2, first=4)
    same_everywhere(flat_params(model), "parameters after broadcast_optimizer_state")


def plain_checkpoint():
    model, opt = model_and_opt()
    train(model, opt, 3)
    plain = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
    x, y = batch(hvd.rank(), 99)
    LOSS(model(x), y).backward()
    plain.step()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        opt.load_state_dict(plain.state_dict())
    assert any("starts fresh" in str(w.message) for w in caught), "no warning for a plain torch checkpoint"
    assert opt.step_count == 0 and not opt.local_sgd_state.error_feedback.memory, "the algorithm state did not start fresh"
    assert opt.param_groups[0]["lr"] == 0.05 and opt.param_groups[0]["momentum"] == 0.5


def add_param_group(local_steps):
    model, opt = model_and_opt(local_steps=local_steps)
    train(model, opt, 2)
    torch.manual_seed(3)
    head = nn.Linear(4, 4)
    hvd.broadcast_parameters(head.state_dict(), root_rank=0)
    start = flat_params(head)
    opt.add_param_group({"params": list(head.parameters()), "names": ["head.weight", "head.bias"]})
    loss_fn = nn.CrossEntropyLoss()
    for step in range(2, 2 + 2 * local_steps):
        x, y = batch(hvd.rank(), step)
        opt.zero_grad()
        loss_fn(head(model(x)), y).backward()
        opt.step()
    assert (flat_params(head) - start).abs().max() > 1e-4, "the added group did not train"
    same_everywhere(flat_params(head), f"the added group (H={local_steps})")
    assert any(n == "head.weight" for n, _ in opt.named_params)


def main():
    hvd.init()
    broadcast_state()
    plain_checkpoint()
    for local_steps in (1, 2):
        add_param_group(local_steps)
    print(f"rank {hvd.rank()}: OK", flush=True)


if __name__ == "__main__":
    main()
