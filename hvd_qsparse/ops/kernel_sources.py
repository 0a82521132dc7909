"""Where the CUDA sources of ``kernels/`` are, in a checkout and in an installed package.

``kernels/`` sits at the top of the repository and holds only ``.cu`` files (it is not a
Python package: a PyPI package named ``kernels`` exists). ``pip install .`` ships them as data
files under ``<prefix>/share/hvd_qsparse/kernels`` (``setup.cfg``); a checkout or an editable
install reads them beside the package. A CuPy backend compiles them with ``cupy.RawModule``.
"""
import sys
from pathlib import Path
from typing import List

SHARE = Path("share") / "hvd_qsparse" / "kernels"


def kernel_dirs() -> List[Path]:
    """The directories searched, in order: the checkout's ``kernels/``, then the installed data."""
    return [Path(__file__).resolve().parents[2] / "kernels", Path(sys.prefix) / SHARE]


def kernel_source(name: str) -> str:
    """The CUDA source ``kernels/<name>.cu``.

    Raises:
        FileNotFoundError: no such kernel, naming the directories searched and the kernels there.
    """
    for directory in kernel_dirs():
        path = directory / f"{name}.cu"
        if path.is_file():
            return path.read_text()
    found = sorted({p.stem for d in kernel_dirs() if d.is_dir() for p in d.glob("*.cu")})
    raise FileNotFoundError(f"no CUDA kernel {name!r} in {', '.join(map(str, kernel_dirs()))}; "
                            f"kernels there: {', '.join(found) or 'none'}")
