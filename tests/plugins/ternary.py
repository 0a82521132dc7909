"""A compressor in one file, as a user would add one: scaled ternary, 2 bits per entry.

Entries with |x_i| above the mean magnitude ||x||_1/d keep their sign and take μ, the mean
magnitude of the kept entries; the others are 0. With S the kept set, the error is
||x||² − |S|·μ² < ||x||² for x ≠ 0, a contraction, so error feedback may use it. Payload: μ as
fp32 and a 2-bit code per entry (0: zero, 1: +μ, 2: −μ). Nothing else in the package is edited
to offer it: registering is the decorator below, and every algorithm that takes a compressor
accepts ``"ternary"`` and ``"topk+ternary"`` once this module is imported (or found by
``hvd_qsparse.compression.discover`` when it sits in the compression package).
"""
from typing import Optional, Sequence

import torch

from hvd_qsparse.compression import Compressor, register_quantizer
from hvd_qsparse.ops import Selection, pack_bits, packed_nbytes, unpack_bits

CODE_BITS = 2


@register_quantizer("ternary")
class TernaryCompressor(Compressor):
    """Scaled ternary quantization: μ · {−1, 0, +1} per entry."""

    def encode(self, flat: torch.Tensor, seed: Optional[int], noise_seed: Optional[int]):
        magnitude = flat.abs()
        kept = magnitude > magnitude.mean() if flat.numel() else magnitude.bool()
        mu = (magnitude[kept].mean() if bool(kept.any()) else magnitude.sum()).reshape(1).float()
        negative = flat < 0
        code = kept.to(torch.int64) * (1 + negative.to(torch.int64))
        values = kept.float() * (1.0 - 2.0 * negative.float()) * mu
        return [mu, pack_bits(code, CODE_BITS)], Selection(values)

    def decode(self, parts: Sequence[torch.Tensor], numel: int, seed: Optional[int]) -> torch.Tensor:
        mu, packed = parts
        code = unpack_bits(packed, numel, CODE_BITS)
        kept = (code > 0).float()
        return kept * (1.0 - 2.0 * (code == 2).float()) * mu.float()

    def layout(self, numel: int):
        return [(torch.float32, 1), (torch.uint8, packed_nbytes(numel, CODE_BITS))]

    def analytic_bits(self, numel: int) -> int:
        return 32 + CODE_BITS * numel
