"""Checkpoint files: atomic, versioned, checksummed, read with ``weights_only=True``; every kind
of wrong file is refused naming the file and what differs (one rank; the rank and world-size
cases run under real ranks in ``tests/parallel/test_checkpoint.py``)."""
import os
import zipfile

import horovod.torch as hvd
import pytest
import torch
from torch import nn

import hvd_qsparse
from hvd_qsparse import CheckpointError, load_checkpoint, save_checkpoint
from hvd_qsparse.optim import checkpoint
from hvd_qsparse.optim.state_format import map_tensors

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


@pytest.fixture(scope="module", autouse=True)
def horovod():
    hvd.init()  # one rank; never shut down (MPI cannot start twice in a process)


def build(algorithm="qsparse", hidden=6, device="cpu", **options):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, hidden), nn.Tanh(), nn.Linear(hidden, 2)).to(device)
    options = options or {"compressor": "topk+sign", "ratio": 0.5, "local_steps": 2}
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                           model.named_parameters(), algorithm=algorithm, **options)
    return model, opt


def train(model, opt, steps=3, first=0):
    device = next(model.parameters()).device
    for step in range(first, first + steps):
        gen = torch.Generator().manual_seed(step)
        x, y = torch.randn(8, 5, generator=gen).to(device), torch.randint(0, 2, (8,), generator=gen).to(device)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


@pytest.fixture
def saved(tmp_path):
    model, opt = build()
    train(model, opt)
    path = str(tmp_path / "ckpt.0")
    save_checkpoint(path, model, opt, extra={"epoch": 3})
    return path, model, opt


def params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_round_trip_resumes_exactly_and_leaves_no_temporary_file(saved, tmp_path):
    path, model, opt = saved
    other_model, other_opt = build()
    assert load_checkpoint(path, other_model, other_opt) == {"epoch": 3}
    train(model, opt, 3, first=3)
    train(other_model, other_opt, 3, first=3)
    assert torch.equal(params(model), params(other_model))
    assert os.listdir(tmp_path) == ["ckpt.0"]


def test_the_file_loads_with_weights_only(saved):
    record = torch.load(saved[0], weights_only=True)
    assert record["format"] == checkpoint.FORMAT and record["version"] == checkpoint.VERSION


def test_a_crash_mid_write_keeps_the_previous_file(saved, tmp_path, monkeypatch):
    path, model, opt = saved
    before = open(path, "rb").read()

    def crash(obj, out):
        out.write(b"partial")
        raise KeyboardInterrupt("killed mid-write")
    monkeypatch.setattr(checkpoint.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, opt)
    assert open(path, "rb").read() == before and os.listdir(tmp_path) == ["ckpt.0"]


def flip_inside_a_tensor(path, count=64):
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    with open(path, "r+b") as handle:
        handle.seek(info.header_offset + 26)
        name_len, extra_len = int.from_bytes(handle.read(2), "little"), int.from_bytes(handle.read(2), "little")
        start = info.header_offset + 30 + name_len + extra_len + info.file_size // 2 - count // 2
        handle.seek(start)
        data = bytearray(handle.read(count))
        handle.seek(start)
        handle.write(bytes(b ^ 0xFF for b in data))


def write_raw(path, data: bytes):
    with open(path, "wb") as handle:
        handle.write(data)


@pytest.mark.parametrize("spoil,needle", [
    (lambda p: write_raw(p, b""), "is empty"),
    (lambda p: write_raw(p, open(p, "rb").read()[: os.path.getsize(p) // 2]), "cannot be read"),
    (flip_inside_a_tensor, "is corrupted: the checksum"),
    (lambda p: torch.save({"model": {}, "optimizer": {}}, p), "has no 'hvd_qsparse-checkpoint' format record"),
    (lambda p: write_raw(p, b"not a torch file at all"), "cannot be read"),
])
def test_spoiled_files_are_refused(saved, spoil, needle):
    path = saved[0]
    spoil(path)
    model, opt = build()
    with pytest.raises(CheckpointError, match=needle) as info:
        load_checkpoint(path, model, opt)
    assert path in str(info.value)


class Payload:
    def __reduce__(self):
        return os.system, ("touch /tmp/hvd_qsparse_pwned",)


def test_a_pickled_payload_never_runs(tmp_path):
    if os.path.exists("/tmp/hvd_qsparse_pwned"):
        os.remove("/tmp/hvd_qsparse_pwned")
    path = str(tmp_path / "evil.0")
    torch.save({"format": checkpoint.FORMAT, "version": 1, "evil": Payload()}, path)
    model, opt = build()
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(path, model, opt)
    assert not os.path.exists("/tmp/hvd_qsparse_pwned")


@pytest.mark.parametrize("other,needle", [
    (dict(algorithm="doublesqueeze", compressor="sign"), "written by algorithm 'qsparse'"),
    (dict(compressor="topk+sign", ratio=0.5, local_steps=4), "local_steps=2, this optimizer has local_steps=4"),
    (dict(compressor="topk+sign", ratio=0.25, local_steps=2), "compressor_params"),
    (dict(compressor="randk+sign", ratio=0.5, local_steps=2), "compressor 'topk\\+sign'"),
    (dict(hidden=7), "its model does not fit this one"),
])
def test_another_setting_or_model_is_refused(saved, other, needle):
    kwargs = dict(other)
    algorithm, hidden = kwargs.pop("algorithm", "qsparse"), kwargs.pop("hidden", 6)
    model, opt = build(algorithm, hidden, **kwargs)
    with pytest.raises(CheckpointError, match=needle):
        load_checkpoint(saved[0], model, opt)


def layout_of(opt):
    """The optimizer's state dict with each tensor replaced by its dtype, shape and device."""
    return map_tensors(opt.state_dict(), lambda tensor, _: (tensor.dtype, tuple(tensor.shape), tensor.device))


def devices_of(opt):
    """The devices of every tensor in the optimizer's state but torch.optim's ``step`` counters."""
    return {tensor.device for path, tensor in checkpoint._tensors(opt.state_dict(), "") if not path.endswith("/step")}


def test_cpu_and_default_map_location_load_the_same_state(saved):
    path, model, opt = saved
    loaded = []
    for location in ("cpu", None):
        other_model, other_opt = build()
        load_checkpoint(path, other_model, other_opt, map_location=location)
        loaded.append((other_model, other_opt))
    (cpu_model, cpu_opt), (default_model, default_opt) = loaded
    assert torch.equal(params(cpu_model), params(default_model)) and torch.equal(params(cpu_model), params(model))
    assert layout_of(cpu_opt) == layout_of(default_opt) == layout_of(opt)
    digest = checkpoint.tensor_digest
    assert digest(cpu_opt.state_dict()) == digest(default_opt.state_dict()) == digest(opt.state_dict())
    assert devices_of(default_opt) == {torch.device("cpu")}


@needs_cuda
def test_a_checkpoint_moves_between_cuda_and_cpu(saved, tmp_path):
    path, model, opt = saved
    gpu_model, gpu_opt = build(device="cuda")
    load_checkpoint(path, gpu_model, gpu_opt)  # written on the CPU: the state follows the parameters
    assert devices_of(gpu_opt) == {params(gpu_model).device}
    gpu_path = str(tmp_path / "ckpt.gpu")
    save_checkpoint(gpu_path, gpu_model, gpu_opt, extra={"epoch": 3})
    cpu_model, cpu_opt = build()
    assert load_checkpoint(gpu_path, cpu_model, cpu_opt) == {"epoch": 3}
    assert devices_of(cpu_opt) == {torch.device("cpu")}
    assert torch.equal(params(cpu_model), params(model))
    assert checkpoint.tensor_digest(cpu_opt.state_dict()) == checkpoint.tensor_digest(opt.state_dict())
