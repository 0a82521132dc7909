"""QComp_k = Q ∘ Comp_k: sparsify, then quantize the k kept values (docs/algorithms.md).

Payload: the quantizer's parts for the k values, then (unless the indices come from a shared
seed) the ascending indices packed in ⌈log2 d⌉ bits each.
"""
from typing import Optional, Sequence

import torch

from hvd_qsparse.compression.base import Compressor, Context, Layout
from hvd_qsparse.compression.sparsifiers import Sparsifier
from hvd_qsparse.ops import Selection, ceil_log2, get_ops, pack_bits, packed_nbytes, unpack_bits


class SparseCompressor(Compressor):
    """A sparsifier followed by a quantizer of the kept values."""

    def __init__(self, sparsifier: Sparsifier, quantizer: Compressor):
        self.sparsifier = sparsifier
        self.quantizer = quantizer
        suffix = "" if quantizer.name == "none" else "+" + quantizer.name
        self.name = sparsifier.name + suffix

    def params(self) -> dict:
        return {**self.sparsifier.params(), **self.quantizer.params()}

    def encode(self, flat: torch.Tensor, seed: Optional[int], noise_seed: Optional[int]):
        indices = self.sparsifier.select(flat, seed)
        parts, kept = self.quantizer.encode(flat[indices], seed, noise_seed)
        if self.sparsifier.sends_indices:
            parts.append(pack_bits(indices, ceil_log2(flat.numel()), check=False))
        return parts, Selection(kept.values.float(), indices)

    def decode(self, parts: Sequence[torch.Tensor], numel: int, seed: Optional[int]) -> torch.Tensor:
        indices, values = self.decode_sparse(parts, numel, seed)
        out = torch.zeros(numel, dtype=torch.float32, device=values.device)
        return get_ops(out).scatter_add(out, indices, values)

    def decode_sparse(self, parts: Sequence[torch.Tensor], numel: int, seed: Optional[int]):
        """(indices, fp32 values) that ``parts`` stand for."""
        k = self.sparsifier.k(numel)
        n_values = len(self.quantizer.layout(k))
        values = self.quantizer.decode(parts[:n_values], k, seed)
        if self.sparsifier.sends_indices:
            indices = unpack_bits(parts[n_values], k, ceil_log2(numel))
        else:
            indices = self.sparsifier.indices_from_seed(numel, seed, values.device)
        return indices, values

    def decompress_sum(self, payloads: Sequence[torch.Tensor], ctx: Context) -> torch.Tensor:
        """All ranks' payloads decoded with one scatter-add."""
        pairs = [self.decode_sparse(self.parts(p, ctx.numel), ctx.numel, ctx.seed) for p in payloads]
        indices = torch.cat([i for i, _ in pairs])
        values = torch.cat([v for _, v in pairs])
        out = torch.zeros(ctx.numel, dtype=torch.float32, device=values.device)
        return get_ops(out).scatter_add(out, indices, values)

    def kernel_spec(self, numel: int) -> tuple:
        """The base spec plus ``k``, the kept count for ``numel`` entries (``Sparsifier.k``)."""
        name, params = super().kernel_spec(numel)
        return name, tuple(sorted(params + (("k", self.sparsifier.k(numel)),)))

    def layout(self, numel: int) -> Layout:
        k = self.sparsifier.k(numel)
        layout = list(self.quantizer.layout(k))
        if self.sparsifier.sends_indices:
            layout.append((torch.uint8, packed_nbytes(k, ceil_log2(numel))))
        return layout

    def analytic_bits(self, numel: int) -> int:
        k = self.sparsifier.k(numel)
        index_bits = k * ceil_log2(numel) if self.sparsifier.sends_indices else 0
        return index_bits + self.quantizer.analytic_bits(k)
