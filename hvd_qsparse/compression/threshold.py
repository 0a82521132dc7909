"""GD-SEC's payload: the (index, value) pairs of the entries whose magnitude exceeds a threshold.

Which entries go is decided by the data (a per-entry threshold from the algorithm's state), so
the payload's size varies from step to step and from rank to rank. Framing: the k values as
fp32, then their ascending indices packed in ⌈log2 d⌉ bits each (``ops.pack_bits``), each part
padded to 4 bytes (``ops.join_parts``), as the ``topk`` compressor frames its payload. There is
no count header: the variable-size allgather already tells every rank the byte size of every
payload, and k follows from it, because 4k + aligned(packed_nbytes(k, ⌈log2 d⌉)) grows strictly
with k. Nothing selected is an empty payload (0 bytes).

It is not registered as a ``--compressor``: its selection needs per-entry thresholds that only
GD-SEC's state knows (they scale with how far each parameter moved). An instance carries one
threshold tensor and is built per (step, tensor); decoding never needs the threshold.

``max_count`` caps the payload: when more entries pass the threshold, the ``max_count`` of
largest magnitude among them go (ties to the lowest index, as ``topk``), so the bits per step
have a bound whatever the thresholds do.
"""
from typing import List, Optional, Sequence

import torch

from hvd_qsparse.compression.base import Compressor, Layout
from hvd_qsparse.ops import (Selection, as_bytes, ceil_log2, get_ops, layout_nbytes, pack_bits, packed_nbytes, split_parts,
                             unpack_bits)

VALUE_BITS = 32


class ThresholdSparsifier(Compressor):
    """Keeps the entries x_i with |x_i| > threshold_i; sends them as (index, fp32 value) pairs.

    Args:
        threshold: per-entry thresholds, the shape of the tensors to compress (or broadcastable
            to it); None keeps every non-zero entry. Only the sender needs it.
        max_count: the most entries a payload carries (None: no cap).
    """

    name = "threshold"

    def __init__(self, threshold: Optional[torch.Tensor] = None, max_count: Optional[int] = None):
        self.threshold = threshold
        self.max_count = max_count

    def encode(self, flat: torch.Tensor, seed: Optional[int], noise_seed: Optional[int]):
        limit = 0.0 if self.threshold is None else self.threshold.reshape(-1).to(flat.dtype)
        magnitude = flat.abs()
        passing = magnitude > limit
        indices = torch.nonzero(passing).reshape(-1)
        if self.max_count is not None and indices.numel() > self.max_count:
            # every passing entry has a magnitude > 0, so the top ones are all passing entries
            indices = get_ops(flat).topk_indices(torch.where(passing, magnitude, 0.0), self.max_count)
        values = flat[indices]
        return [values, pack_bits(indices, ceil_log2(flat.numel()))], Selection(values, indices)

    def decode(self, parts: Sequence[torch.Tensor], numel: int, seed: Optional[int]) -> torch.Tensor:
        values, packed = parts
        indices = unpack_bits(packed, values.numel(), ceil_log2(numel))
        out = torch.zeros(numel, dtype=torch.float32, device=values.device)
        return get_ops(out).scatter_add(out, indices, values)

    def parts(self, payload: torch.Tensor, numel: int) -> List[torch.Tensor]:
        """Split a payload whose entry count is read from its size."""
        data = as_bytes(payload)
        return split_parts(data, self.layout_for(self.count(data, numel), numel))

    def count(self, payload: torch.Tensor, numel: int) -> int:
        """Entries a payload of a tensor with ``numel`` entries carries, from its byte size.

        Raises:
            ValueError: no entry count gives a payload of that size.
        """
        nbytes = as_bytes(payload).numel()
        k = min(numel, 8 * nbytes // (VALUE_BITS + ceil_log2(numel)))
        while k > 0 and layout_nbytes(self.layout_for(k, numel)) > nbytes:
            k -= 1
        if layout_nbytes(self.layout_for(k, numel)) != nbytes:
            raise ValueError(f"a payload of {nbytes} bytes is not a threshold payload for {numel} entries")
        return k

    @staticmethod
    def layout_for(k: int, numel: int) -> Layout:
        """Parts of a payload with ``k`` of ``numel`` entries: fp32 values, packed indices."""
        return [(torch.float32, k), (torch.uint8, packed_nbytes(k, ceil_log2(numel)))]

    def layout(self, numel: int) -> Layout:
        """The largest payload (every entry kept)."""
        return self.layout_for(numel, numel)

    @staticmethod
    def analytic_bits_for(k: int, numel: int) -> int:
        """k·(⌈log2 d⌉ + 32): the ``topk`` row of docs/algorithms.md's table with a data-dependent k."""
        return k * (ceil_log2(numel) + VALUE_BITS)

    def analytic_bits_of(self, selection: Selection, numel: int) -> int:
        """k·(⌈log2 d⌉ + 32) with the k entries this payload kept."""
        return self.analytic_bits_for(selection.values.numel(), numel)

    def analytic_bits(self, numel: int) -> int:
        """Bits of the largest payload (every entry kept)."""
        return self.analytic_bits_for(numel, numel)
