"""Every kernel module compiles through NVRTC (the compiler ``cupy.RawModule`` uses) for the
GPUs the project targets, with the CuPy backend's own options, and every kernel the backend
launches is in the compiled code. Needs no GPU: NVRTC compiles without a device."""
import re

import pytest

from hvd_qsparse.ops.kernel_sources import compile_options, kernel_dirs, kernel_source

ARCHITECTURES = ("sm_80", "sm_90")


@pytest.fixture(scope="module")
def nvrtc():
    libs = pytest.importorskip("cupy_backends.cuda.libs.nvrtc", reason="CuPy is not installed here")
    try:
        libs.getVersion()
    except Exception as error:  # the NVRTC library itself (nvidia-cuda-nvrtc) is missing
        pytest.skip(f"NVRTC cannot load here: {error}")
    return libs


def compiled(nvrtc, module: str, arch: str) -> bytes:
    program = nvrtc.createProgram(kernel_source(module), f"{module}.cu", [], [])
    try:
        nvrtc.compileProgram(program, [*compile_options(module), f"--gpu-architecture={arch}"])
    except Exception as error:
        pytest.fail(f"{module}.cu for {arch}: {error}\n{nvrtc.getProgramLog(program)}")
    return nvrtc.getCUBIN(program)


def modules():
    return sorted(p.stem for p in kernel_dirs()[0].glob("*.cu"))


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("module", modules())
def test_module_compiles_and_holds_the_kernels_the_backend_launches(nvrtc, module, arch):
    from hvd_qsparse.ops.cupy_ops import KERNELS

    cubin = compiled(nvrtc, module, arch)
    assert cubin.startswith(b"\x7fELF"), f"{module}.cu for {arch}: NVRTC gave no cubin"
    for name in KERNELS[module]:
        assert name.encode() + b"\0" in cubin, f"kernel {name} is not in {module}.cu's {arch} cubin"


def test_the_backend_launches_every_kernel_defined_and_no_other():
    from hvd_qsparse.ops.cupy_ops import KERNELS

    defined = {m: set(re.findall(r'extern "C" __global__ void (\w+)\(', kernel_source(m))) for m in modules()}
    assert defined == {m: set(names) for m, names in KERNELS.items()}
