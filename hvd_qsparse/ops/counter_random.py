"""Counter-based random numbers that every device draws alike (kernels/qsparse_device.cuh).

Draw i of stream ``seed`` is the splitmix64 finaliser (Steele, Lea and Flood, *Fast splittable
pseudorandom number generators*, OOPSLA 2014) applied to ``seed + (i + 1)·γ``, γ = 0x9E3779B97F4A7C15.
Why not ``torch.Generator``: CUDA's and the CPU's generators give different streams for one
seed, so a rand-k payload encoded on one device and decoded on the other picked other entries,
and a kernel could never reproduce the reference's stochastic rounding. Here the numbers are a
pure function of (seed, i): torch computes them in int64 arithmetic (two's-complement wrap-around
is the uint64 arithmetic of the kernels; right shifts are masked to be logical).
"""
import torch

MASK64 = (1 << 64) - 1


def _signed(value: int) -> int:
    """The int64 with the bits of the uint64 ``value``."""
    value &= MASK64
    return value - (1 << 64) if value >> 63 else value


GOLDEN = _signed(0x9E3779B97F4A7C15)
MIX1 = _signed(0xBF58476D1CE4E5B9)
MIX2 = _signed(0x94D049BB133111EB)


def _shift_right(z: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 bit patterns (torch's ``>>`` is arithmetic)."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def mix64(z: torch.Tensor) -> torch.Tensor:
    """splitmix64's finaliser on int64 bit patterns."""
    z = (z ^ _shift_right(z, 30)) * MIX1
    z = (z ^ _shift_right(z, 27)) * MIX2
    return z ^ _shift_right(z, 31)


def draws(seed: int, count: int, device: torch.device) -> torch.Tensor:
    """Draws 0 .. count−1 of stream ``seed`` as int64 bit patterns of uint64 values."""
    counters = torch.arange(1, count + 1, dtype=torch.int64, device=device)
    return mix64(counters * GOLDEN + _signed(int(seed)))


def uniform(seed: int, count: int, device: torch.device) -> torch.Tensor:
    """``count`` float32 uniforms in [0, 1) with 24 random bits each (exact in float32)."""
    return _shift_right(draws(seed, count, device), 40).float() * (1.0 / (1 << 24))


def random_keys(seed: int, count: int, device: torch.device) -> torch.Tensor:
    """The high 31 bits of each draw, as int64 in [0, 2**31): rand-k's selection keys (31 bits,
    as the magnitude keys of top-k, so one radix select and one composite key serve both)."""
    return _shift_right(draws(seed, count, device), 33)


def unseeded() -> int:
    """A 62-bit seed from torch's global CPU generator, for callers that pass no seed."""
    return int(torch.randint(0, 1 << 62, (1,)))
