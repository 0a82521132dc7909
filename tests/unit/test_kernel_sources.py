"""``kernels/`` holds the CUDA sources; a checkout finds them, and ``pip install .`` ships them."""
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from hvd_qsparse.ops import kernel_sources

from ._helpers import REPO_ROOT


def test_every_kernel_module_is_found_by_name_and_defines_kernels():
    names = sorted(p.stem for p in (REPO_ROOT / "kernels").glob("*.cu"))
    assert names, "kernels/ holds no CUDA source"
    for name in names:
        assert re.search(r'extern "C" __global__ void \w+\(', kernel_sources.kernel_source(name))
        assert kernel_sources.compile_options(name)[-1] == f"-I{REPO_ROOT / 'kernels'}"


def test_a_missing_kernel_names_where_it_looked():
    with pytest.raises(FileNotFoundError, match="no CUDA kernel 'nope' in .*kernels.*radix_select"):
        kernel_sources.kernel_source("nope")


def test_kernels_dir_is_not_a_python_package():
    assert not (REPO_ROOT / "kernels" / "__init__.py").exists()
    assert {p.suffix for p in (REPO_ROOT / "kernels").iterdir()} == {".cu", ".cuh"}


@pytest.mark.timeout(240)
def test_the_wheel_ships_the_kernels(tmp_path):
    """A wheel built from this tree holds every ``kernels/*.cu`` and ``*.cuh`` where
    ``kernel_dirs`` looks after an install (``<prefix>/share/hvd_qsparse/kernels``). Built from
    a copy, so the checkout gets no ``build/``."""
    source = tmp_path / "src"
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info",
                                                                     "__pycache__", "runs"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(source)], capture_output=True, text=True, timeout=220)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(tmp_path.glob("hvd_qsparse-*.whl"))
    shipped = {name.rsplit("/", 1)[-1] for name in zipfile.ZipFile(wheel).namelist()
               if "/data/share/hvd_qsparse/kernels/" in name}
    assert shipped == {p.name for p in (REPO_ROOT / "kernels").iterdir()}
