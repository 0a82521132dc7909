"""Importing hvd_qsparse needs neither CuPy nor a GPU, and does not pull CuPy in."""
import subprocess
import sys

import torch

from hvd_qsparse.ops import FAST_CPU, REFERENCE, force_reference, get_ops

from ._helpers import REPO_ROOT, subprocess_env

_BLOCK_CUPY = r"""
import sys
class _NoCupy:
    # emulate a machine without CuPy even where it is installed
    def find_spec(self, name, path=None, target=None):
        if name == "cupy" or name.startswith("cupy.") or name.startswith("cupy_"):
            raise ImportError("cupy blocked by the test")
        return None
if "--block" in sys.argv:
    sys.meta_path.insert(0, _NoCupy())
"""

_CHECK = _BLOCK_CUPY + r"""
import torch
import hvd_qsparse
assert "cupy" not in sys.modules, "importing hvd_qsparse imported cupy"
from hvd_qsparse.compression import create
c = create("topk+sign", ratio=0.1)
p, ctx = c.compress(torch.randn(100), seed=1)
assert c.decompress(p, ctx).shape == (100,)
assert "cupy" not in sys.modules, "compressing a CPU tensor imported cupy"
print("ok", hvd_qsparse.__version__)
"""


def test_import_without_cupy_in_subprocess():
    """Two fresh interpreters, run side by side: the literal ``python -c "import hvd_qsparse"``,
    and one where any attempt to import CuPy fails, which then also compresses a CPU tensor."""
    commands = [[sys.executable, "-c", "import hvd_qsparse; import sys; assert 'cupy' not in sys.modules"],
                [sys.executable, "-c", _CHECK, "--block"]]
    procs = [subprocess.Popen(cmd, cwd=REPO_ROOT, env=subprocess_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for cmd in commands]
    results = [proc.communicate(timeout=120) + (proc.returncode,) for proc in procs]
    for out, err, rc in results:
        assert rc == 0, err
    assert results[1][0].startswith("ok"), results[1]


def test_cpu_tensors_use_fast_cpu_backend_unless_reference_forced(monkeypatch):
    assert get_ops(torch.zeros(3)) is FAST_CPU
    monkeypatch.setenv("HVD_QSPARSE_OPS", "reference")
    assert force_reference()
    assert get_ops(torch.zeros(3)) is REFERENCE
    monkeypatch.setenv("HVD_QSPARSE_OPS", "auto")
    assert not force_reference()
