"""The DDP hook under torchrun (Gloo, Horovod hidden): with the identity compressor it gives
plain DDP's parameters; with top-k + sign it gives ``DistributedOptimizer(local_steps=1,
warmup_steps=2, backend="torch")``'s parameters and bits; its state resumes exactly; NaN is
refused on every rank with the memory untouched."""
import sys

for name in ("horovod", "horovod.torch", "horovod.common", "horovod.common.elastic"):
    sys.modules[name] = None  # `import horovod...` now raises ImportError

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from common import flat_params, make_model, train_steps  # noqa: E402
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402

import hvd_qsparse  # noqa: E402

STEPS, ATOL = 6, 1e-6


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def hook_state(model=None, **kwargs):
    """A top-k + sign hook state, per parameter when given the DDP ``model``."""
    named = None if model is None else model.named_parameters()
    return hvd_qsparse.CompressionHookState(compressor="topk+sign", ratio=0.1, named_parameters=named, **kwargs)


def ddp_run(make_state=None, steps=STEPS):
    """Train a DDP model (with the hook ``make_state(model)`` when given); (model, opt, state)."""
    model = DDP(make_model())
    state = None if make_state is None else make_state(model)
    if state is not None:
        model.register_comm_hook(state, hvd_qsparse.ddp_hook)
    opt = sgd(model)
    train_steps(model, opt, dist.get_rank(), 0, steps)
    return model, opt, state


def ours_run():
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(sgd(model), model.named_parameters(), backend="torch",
                                           compressor="topk+sign", ratio=0.1, local_steps=1, warmup_steps=2)
    opt.broadcast_state()
    train_steps(model, opt, dist.get_rank(), 0, STEPS)
    return flat_params(model), opt.bits.total_sent


def check_resume(rank):
    """4 steps, a checkpoint, 2 more in a new DDP (whose first buckets are laid out anew)."""
    model, opt, state = ddp_run(hook_state, 4)
    saved = {"model": model.module.state_dict(), "opt": opt.state_dict(), "hook": state.state_dict()}
    straight = flat_params(ddp_run(hook_state)[0].module)
    model = DDP(make_model())
    fresh = hook_state(model)
    fresh.load_state_dict(saved["hook"])
    model.module.load_state_dict(saved["model"])
    model.register_comm_hook(fresh, hvd_qsparse.ddp_hook)
    opt = sgd(model)
    opt.load_state_dict(saved["opt"])
    train_steps(model, opt, rank, 4, 2)
    assert torch.equal(flat_params(model.module), straight), "resumed DDP hook run differs"
    per_bucket = ddp_run(lambda m: hook_state(), 4)[2].state_dict()
    for state_dict, wrong, match in ((saved["hook"], hvd_qsparse.CompressionHookState(compressor="topk", ratio=0.1),
                                      "compressor="),
                                     (saved["hook"], hook_state(), "per_parameter="),
                                     (per_bucket, hook_state(), "cannot resume")):
        try:
            wrong.load_state_dict(state_dict)
        except ValueError as error:
            assert match in str(error), str(error)
        else:
            raise AssertionError(f"a checkpoint was accepted ({match})")


def check_non_finite(rank):
    model, opt, state = ddp_run(hook_state, 3)
    before = {k: v.clone() for k, v in state.memory.memory.items()}
    x = torch.randn(16, 12)
    if rank == 1:
        x[0, 0] = float("nan")
    try:
        model(x).sum().backward()
    except Exception as error:  # DDP hands the hook's error back through backward
        assert "rank 1" in str(error) and "NaN or Inf" in str(error), str(error)
    else:
        raise AssertionError("NaN on rank 1 was not refused")
    assert all(torch.equal(before[k], v) for k, v in state.memory.memory.items()), "memory moved"


def main():
    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    rank = dist.get_rank()
    plain = flat_params(ddp_run()[0].module)
    assert (plain - flat_params(make_model())).abs().max() > 1e-3, "training did not move the parameters"
    identity = flat_params(ddp_run(lambda m: hvd_qsparse.CompressionHookState(compressor="none"))[0].module)
    diff = (identity - plain).abs().max().item()
    assert diff <= ATOL, f"identity hook vs plain DDP: {diff}"
    model, _, state = ddp_run(hook_state)
    hooked = flat_params(model.module)
    params, bits = ours_run()
    diff = (hooked - params).abs().max().item()
    assert diff <= ATOL, f"topk+sign hook vs DistributedOptimizer: {diff}"
    assert state.bits.total_sent == bits, (state.bits.total_sent, bits)
    check_resume(rank)
    check_non_finite(rank)
    print(f"rank {rank}: OK (topk+sign hook vs DistributedOptimizer {diff:.2e}, bits {bits})", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
