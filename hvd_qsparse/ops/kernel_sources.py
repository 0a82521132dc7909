"""Where the CUDA sources of ``kernels/`` are, in a checkout and in an installed package, and
how they are compiled.

``kernels/`` sits at the top of the repository and holds only CUDA sources: ``*.cu`` modules
(one ``cupy.RawModule`` each) and the ``*.cuh`` headers they include (it is not a Python
package: a PyPI package named ``kernels`` exists). ``pip install .`` ships them as data files
under ``<prefix>/share/hvd_qsparse/kernels`` (``setup.cfg``); a checkout or an editable install
reads them beside the package. The CuPy backend and the NVRTC checks of ``tests/kernels`` use
the same ``compile_options``, so what CI compiles is what a GPU runs.
"""
import sys
from pathlib import Path
from typing import List, Tuple

SHARE = Path("share") / "hvd_qsparse" / "kernels"
#: the C++ dialect of every kernel (NVRTC's default is older)
STANDARD = "-std=c++17"


def kernel_dirs() -> List[Path]:
    """The directories searched, in order: the checkout's ``kernels/``, then the installed data."""
    return [Path(__file__).resolve().parents[2] / "kernels", Path(sys.prefix) / SHARE]


def kernel_dir(name: str) -> Path:
    """The first directory holding ``<name>.cu``.

    Raises:
        FileNotFoundError: no such kernel module, naming the directories searched and the
            modules there.
    """
    for directory in kernel_dirs():
        if (directory / f"{name}.cu").is_file():
            return directory
    found = sorted({p.stem for d in kernel_dirs() if d.is_dir() for p in d.glob("*.cu")})
    raise FileNotFoundError(f"no CUDA kernel {name!r} in {', '.join(map(str, kernel_dirs()))}; "
                            f"kernels there: {', '.join(found) or 'none'}")


def kernel_source(name: str) -> str:
    """The CUDA source ``kernels/<name>.cu`` (see ``kernel_dir`` for the error)."""
    return (kernel_dir(name) / f"{name}.cu").read_text()


def compile_options(name: str) -> Tuple[str, ...]:
    """NVRTC options for module ``name``: the dialect and its directory for the headers."""
    return STANDARD, f"-I{kernel_dir(name)}"
