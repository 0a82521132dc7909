"""Comparisons of the host harness (the kernels' logic) with the torch reference, one per kernel
family; each raises AssertionError on the first byte that differs."""
import torch

from hvd_qsparse.compression import create
from hvd_qsparse.ops import REFERENCE, pack_bits, packed_nbytes, unpack_bits

from .harness import as_tensor, tensor_bytes

SIZES = (1, 7, (1 << 20) + 3)
INPUTS = ("normal", "ties", "zeros", "constant")


def make_input(kind: str, n: int, seed: int = 0) -> torch.Tensor:
    """float32 vectors with the cases that break selections and layouts: random values, many
    exact ties (and zeros) among few distinct magnitudes, all zero, one constant."""
    gen = torch.Generator().manual_seed(seed)
    if kind == "normal":
        return torch.randn(n, generator=gen)
    if kind == "ties":
        return torch.randint(-3, 4, (n,), generator=gen).float() * 0.5
    if kind == "zeros":
        return torch.zeros(n)
    return torch.full((n,), -1.25)


def counts(n: int):
    """k values worth checking for n entries: one, about 1%, half, all but one, all."""
    return sorted({1, max(1, n // 100), max(1, n // 2), max(1, n - 1), n})


def check_topk(harness, x: torch.Tensor, k: int) -> None:
    (got,) = harness.run("topk", [x.numel(), k], [x])
    assert got == tensor_bytes(REFERENCE.topk_indices(x, k)), f"top-k of {x.numel()} entries, k={k}"


def check_randk(harness, n: int, k: int, seed: int) -> None:
    (got,) = harness.run("randk", [n, k, seed])
    assert got == tensor_bytes(REFERENCE.randk_indices(n, k, seed, torch.device("cpu"))), f"rand-k d={n} k={k} seed={seed}"


def check_sign(harness, x: torch.Tensor) -> None:
    scale, packed, values = harness.run("sign", [x.numel()], [x])
    ref_scale, ref_packed, ref_values = REFERENCE.sign_encode(x)
    assert scale == tensor_bytes(ref_scale), f"sign scale of {x.numel()} entries"
    assert packed == tensor_bytes(ref_packed), f"sign bits of {x.numel()} entries"
    assert values == tensor_bytes(ref_values), f"sign values of {x.numel()} entries"


def check_qsgd(harness, x: torch.Tensor, levels: int, seed: int) -> None:
    norm, packed, values = harness.run("qsgd", [x.numel(), levels, seed], [x])
    ref_norm, ref_packed, ref_values = REFERENCE.qsgd_encode(x, levels, seed)
    where = f"QSGD s={levels} of {x.numel()} entries"
    assert norm == tensor_bytes(ref_norm), f"{where}: norm"
    assert packed == tensor_bytes(ref_packed), f"{where}: codes"
    assert values == tensor_bytes(ref_values), f"{where}: values"


def check_pack(harness, codes: torch.Tensor, width: int) -> None:
    (packed,) = harness.run("pack", [codes.numel(), width], [codes.to(torch.int64)])
    expected = pack_bits(codes, width)
    assert len(packed) == packed_nbytes(codes.numel(), width)
    assert packed == tensor_bytes(expected), f"pack of {codes.numel()} codes at width {width}"
    (unpacked,) = harness.run("unpack", [codes.numel(), width], [expected])
    assert unpacked == tensor_bytes(unpack_bits(expected, codes.numel(), width)), f"unpack at width {width}"


def check_decode(harness, x: torch.Tensor, levels: int = 0) -> None:
    """Decoding the reference's sign (levels 0) or QSGD payload of x."""
    n = x.numel()
    if levels:
        scale, packed, _ = REFERENCE.qsgd_encode(x, levels, 5)
        (got,) = harness.run("qsgd_decode", [n, levels], [scale, packed])
        expected = REFERENCE.qsgd_decode(scale, packed, n, levels)
    else:
        scale, packed, _ = REFERENCE.sign_encode(x)
        (got,) = harness.run("sign_decode", [n], [scale, packed])
        expected = REFERENCE.sign_decode(scale, packed, n)
    assert got == tensor_bytes(expected), f"decode (levels={levels}) of {n} entries"


def check_scatter(harness, n: int, indices: torch.Tensor, values: torch.Tensor) -> None:
    (got,) = harness.run("scatter", [n, indices.numel()], [indices.to(torch.int64), values.float()])
    expected = REFERENCE.scatter_add(torch.zeros(n), indices.to(torch.int64), values.float())
    assert got == tensor_bytes(expected), f"scatter-add of {indices.numel()} values into {n}"


def check_feedback(harness, name: str, g: torch.Tensor, m: torch.Tensor, ratio: float) -> None:
    """The fused error-feedback step (top-k, top-k + sign) against the compressor's own step
    through the reference: payload parts and the new memory."""
    compressor = create(name, ratio=ratio)
    k = compressor.sparsifier.k(g.numel())
    parts = harness.run("ef", [g.numel(), k, compressor.quantizer.name], [g, m])
    flat = g.reshape(-1)
    ref_parts, _, ref_memory = REFERENCE.compress_with_feedback(
        flat, m.clone(), lambda u: compressor.encode(u, None, None), spec=compressor.kernel_spec(g.numel()))
    where = f"{name} error feedback, d={g.numel()}, k={k}"
    assert len(parts) == len(ref_parts) + 1, where
    for index, (got, expected) in enumerate(zip(parts, ref_parts)):
        assert got == tensor_bytes(expected), f"{where}: part {index}"
    assert parts[-1] == tensor_bytes(ref_memory), f"{where}: memory"
    assert as_tensor(parts[-1], torch.float32).numel() == g.numel()
