"""Dense quantizers: identity, fp16, QSGD and scaled sign (docs/algorithms.md's operator table).

Each one also quantizes the k values that a sparsifier keeps (``topk+qsgd`` etc.), with its d
being k there.
"""
from typing import Optional, Sequence

import torch

from hvd_qsparse.compression.base import Compressor, Layout
from hvd_qsparse.validation import check_levels
from hvd_qsparse.compression.registry import register_quantizer
from hvd_qsparse.ops import Selection, ceil_log2, get_ops, packed_nbytes, qsgd_beta


@register_quantizer("none")
class NoneCompressor(Compressor):
    """Identity: dense fp32, 32·d bits. Summable, so allreduce may carry it."""

    summable = True

    def encode(self, flat: torch.Tensor, seed: Optional[int], noise_seed: Optional[int]):
        return [flat], Selection(flat)

    def decode(self, parts: Sequence[torch.Tensor], numel: int, seed: Optional[int]) -> torch.Tensor:
        return parts[0].float()

    def layout(self, numel: int) -> Layout:
        return [(torch.float32, numel)]

    def analytic_bits(self, numel: int) -> int:
        return 32 * numel


FLOAT16_MAX = torch.finfo(torch.float16).max


@register_quantizer("fp16")
class FP16Compressor(NoneCompressor):
    """Half precision, as Horovod's ``Compression.fp16``: 16·d bits, summable.

    Finite values beyond float16's range (|x| > 65504) saturate at ±65504 instead of becoming
    Inf, as Horovod's cast would; under error feedback the excess stays in the memory. NaN and
    Inf pass as they are, so a non-finite sum still shows on every rank.
    """

    def encode(self, flat: torch.Tensor, seed: Optional[int], noise_seed: Optional[int]):
        saturated = torch.where(torch.isfinite(flat), flat.clamp(-FLOAT16_MAX, FLOAT16_MAX), flat)
        half = saturated.half()
        return [half], Selection(half.float())

    def layout(self, numel: int) -> Layout:
        return [(torch.float16, numel)]

    def analytic_bits(self, numel: int) -> int:
        return 16 * numel


@register_quantizer("qsgd")
class QSGDCompressor(Compressor):
    """QSGD with s = ``levels`` (Alistarh et al., NeurIPS 2017).

    Q_s(x)_i = ||x||_2 · sign(x_i) · ξ_i / s, with ξ_i = ⌊s|x_i|/||x||_2⌋ + Bernoulli(frac part),
    is unbiased with E||Q_s(x) − x||² ≤ β||x||², β = min(d/s², √d/s). Inside error feedback a
    contraction is needed, so by default the decoded value is Q_s(x)/(1 + β)
    (Qsparse-local-SGD, Basu et al. 2019, Lemma 1); ``unbiased=True`` decodes Q_s(x) itself.
    Payload: the fp32 norm and, per entry, sign and level in 1 + ⌈log2(s+1)⌉ bits.
    """

    def __init__(self, levels: int = 256, unbiased: bool = False):
        self.levels = check_levels(levels)
        self.unbiased = bool(unbiased)

    def params(self) -> dict:
        return {"levels": self.levels, "unbiased": self.unbiased}

    def encode(self, flat: torch.Tensor, seed: Optional[int], noise_seed: Optional[int]):
        norm, packed, values = get_ops(flat).qsgd_encode(flat, self.levels, noise_seed)
        return [norm, packed], Selection(self._scaled(values, flat.numel()))

    def _scaled(self, values: torch.Tensor, numel: int) -> torch.Tensor:
        return values if self.unbiased else values / (1.0 + qsgd_beta(numel, self.levels))

    def decode(self, parts: Sequence[torch.Tensor], numel: int, seed: Optional[int]) -> torch.Tensor:
        norm, packed = parts
        return self._scaled(get_ops(packed).qsgd_decode(norm, packed, numel, self.levels), numel)

    def layout(self, numel: int) -> Layout:
        return [(torch.float32, 1), (torch.uint8, packed_nbytes(numel, 1 + ceil_log2(self.levels + 1)))]

    def analytic_bits(self, numel: int) -> int:
        return 32 + numel * (1 + ceil_log2(self.levels + 1))


@register_quantizer("sign")
class SignCompressor(Compressor):
    """Scaled sign (Karimireddy et al., 2019): (||x||_1 / d) · sign(x), signs packed 8 per byte."""

    def encode(self, flat: torch.Tensor, seed: Optional[int], noise_seed: Optional[int]):
        scale, packed, values = get_ops(flat).sign_encode(flat)
        return [scale, packed], Selection(values)

    def decode(self, parts: Sequence[torch.Tensor], numel: int, seed: Optional[int]) -> torch.Tensor:
        scale, packed = parts
        return get_ops(packed).sign_decode(scale, packed, numel)

    def layout(self, numel: int) -> Layout:
        return [(torch.float32, 1), (torch.uint8, packed_nbytes(numel, 1))]

    def analytic_bits(self, numel: int) -> int:
        return 32 + numel
