"""Where the job computes and in which precision: ``--device`` and ``--amp``.

One GPU per local rank, as Horovod's recipe has it (``torch.cuda.set_device(hvd.local_rank())``);
model, data and the algorithm's state then live there. ``--amp bf16`` runs forward and loss
under ``torch.autocast`` in bfloat16 (no loss scaling: bf16 has fp32's range); ``--amp fp16``
adds a ``torch.amp.GradScaler``, whose ``scaler.step(opt)`` the wrapper turns into an agreed
skip on every rank (``optim.amp``). The wrapper still exchanges fp32 values: autocast changes
the compute, not what crosses the wire.
"""
import contextlib

import torch

DEVICES = ("auto", "cpu", "cuda")
AMP = ("none", "bf16", "fp16")
#: ``--amp`` → autocast dtype
AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_device_flag(device: str) -> None:
    """``--device cuda`` needs a visible GPU; a ValueError naming the flag otherwise."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is visible on this machine (torch.cuda.is_available() is "
                         "False); use --device cpu or auto")


def resolve_device(device: str, local_rank: int, local_size: int) -> torch.device:
    """The device of this rank: ``cuda:<local_rank>`` (made current) or the CPU.

    Raises:
        ValueError: more local ranks than visible GPUs (they would share one, which NCCL refuses).
    """
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    check_device_flag("cuda")
    count = torch.cuda.device_count()
    if local_size > count:
        raise ValueError(f"--device {device}: {local_size} ranks on this machine but {count} visible GPUs; start "
                         f"at most {count} ranks per machine (one GPU each) or use --device cpu")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


class Precision:
    """Autocast and, for fp16, a GradScaler: the job's forward, backward and step.

    Args:
        amp: ``none``, ``bf16`` or ``fp16``.
        device: where the model runs.
    """

    def __init__(self, amp: str, device: torch.device):
        self.dtype = AMP_DTYPES[amp]
        self.device = device
        self.scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None

    def autocast(self):
        """The context for forward and loss."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward_and_step(self, loss: torch.Tensor, opt) -> None:
        """``loss.backward(); opt.step()``, through the scaler when there is one."""
        if self.scaler is None:
            loss.backward()
            opt.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)
        self.scaler.update()
