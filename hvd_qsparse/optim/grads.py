"""Reading gradients into the exchange and writing results back, whatever the parameter's kind.

The exchanges work on fp32 vectors. Parameters may be fp16, bf16, fp32 or fp64, non-contiguous
(a transposed view, a channels-last tensor), or have sparse gradients (``nn.Embedding(sparse=
True)``). Gradients are read as a dense fp32 copy (sparse ones densified: the compressors select
from the dense tensor), and results are written back in the parameter's dtype and layout; a
sparse gradient comes back sparse (the rows with any non-zero entry), as Horovod's
``sparse_as_dense=True`` does, so ``torch.optim.SparseAdam`` keeps working.
"""
from typing import Dict, Iterable, Optional, Tuple

import torch


def read_grad(param: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """``param.grad`` as a dense fp32 tensor of the parameter's shape, times ``scale`` (zeros
    where backward produced no gradient, so every rank sends the same tensors)."""
    grad = param.grad
    if grad is None:
        return torch.zeros(param.shape, dtype=torch.float32, device=param.device)
    if grad.is_sparse:
        grad = grad.to_dense()
    value = grad.detach().float()
    if scale != 1.0:
        value = value * scale
    return value


def write_grad(param: torch.Tensor, value: torch.Tensor, sparse: bool = False) -> None:
    """Make ``param.grad`` hold ``value`` (fp32, any shape with the parameter's numel), in the
    parameter's dtype; sparse (``sparse_dim=1``) when ``sparse``."""
    value = value.reshape(param.shape).to(param.dtype)
    if sparse:
        param.grad = value.to_sparse(sparse_dim=1)
        return
    grad = param.grad
    if grad is None or grad.is_sparse or grad.shape != param.shape or grad.dtype != param.dtype:
        param.grad = value
        return
    grad.copy_(value)


def sparse_grads(named_params: Iterable[Tuple[str, torch.Tensor]]) -> Dict[str, bool]:
    """Which parameters' gradients are sparse right now (read before they are overwritten)."""
    return {name: bool(p.grad is not None and p.grad.is_sparse) for name, p in named_params}


def unscale_grads_(named_params: Iterable[Tuple[str, torch.Tensor]], inv_scale: Optional[float]) -> None:
    """Multiply every gradient by ``inv_scale`` in place (GradScaler's unscale, for local steps)."""
    if inv_scale is None or inv_scale == 1.0:
        return
    for _, param in named_params:
        if param.grad is not None:
            if param.grad.is_sparse:
                param.grad = param.grad * inv_scale
            else:
                param.grad.mul_(inv_scale)


def poison_grads_(named_params: Iterable[Tuple[str, torch.Tensor]]) -> None:
    """Fill every gradient with NaN: after a step every rank must skip, so that a GradScaler
    that inspects the gradients later (Horovod's ``synchronize(); unscale_()`` recipe) sees the
    overflow on every rank and backs off everywhere."""
    for _, param in named_params:
        write_grad(param, torch.full(param.shape, float("nan"), device=param.device))
