"""Builds ``host_harness.cu`` with nvcc and runs it: the kernels' ``__host__ __device__`` logic
on the CPU, fed raw arrays, answering with the parts it computed."""
import shutil
import struct
import subprocess
from pathlib import Path
from typing import List, Sequence

import numpy
import pytest
import torch

HERE = Path(__file__).resolve().parent
KERNELS = HERE.parents[1] / "kernels"


def nvcc() -> str:
    """The nvcc on PATH, or a skip naming what is missing."""
    path = shutil.which("nvcc")
    if path is None:
        pytest.skip("nvcc is not installed here: the host checks of the kernels' logic need it")
    return path


class Harness:
    """One build of the harness (``defines`` such as ``QSPARSE_BREAK_LAYOUT``) in ``directory``."""

    def __init__(self, directory: Path, defines: Sequence[str] = ()):
        self.binary = directory / "host_harness"
        self.directory = directory
        command = [nvcc(), "-std=c++17", "-O2", f"-I{KERNELS}", *(f"-D{d}" for d in defines),
                   "-o", str(self.binary), str(HERE / "host_harness.cu")]
        built = subprocess.run(command, capture_output=True, text=True, timeout=240)
        assert built.returncode == 0, built.stderr[-3000:]

    def run(self, op: str, args: Sequence, inputs: Sequence[torch.Tensor] = ()) -> List[bytes]:
        """The parts the harness wrote for ``op`` on ``inputs`` (concatenated as raw bytes)."""
        source, target = self.directory / "in.bin", self.directory / "out.bin"
        source.write_bytes(b"".join(t.detach().contiguous().cpu().numpy().tobytes() for t in inputs))
        done = subprocess.run([str(self.binary), op, *map(str, args), str(source), str(target)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        data, parts, at = target.read_bytes(), [], 0
        while at < len(data):
            (size,) = struct.unpack_from("<q", data, at)
            parts.append(data[at + 8: at + 8 + size])
            at += 8 + size
        return parts


def as_tensor(part: bytes, dtype: torch.dtype) -> torch.Tensor:
    """A harness part as a torch tensor of ``dtype``."""
    numpy_dtype = {torch.float32: numpy.float32, torch.int64: numpy.int64, torch.uint8: numpy.uint8}[dtype]
    return torch.from_numpy(numpy.frombuffer(part, dtype=numpy_dtype).copy())


def tensor_bytes(tensor: torch.Tensor) -> bytes:
    """The raw bytes of a tensor (what a payload part puts on the wire)."""
    return tensor.detach().contiguous().cpu().numpy().tobytes()
