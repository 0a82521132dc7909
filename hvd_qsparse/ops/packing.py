"""Bit packing and payload framing: how integers and tensors become the bytes that cross the wire.

Packed format of ``pack_bits(values, width)``: for ``width >= 8`` the low byte of every value
comes first (one byte plane), followed by ``pack_bits(values >> 8, width - 8)``; for
``width < 8`` each group of 8 values fills exactly ``width`` bytes, value j of the group at
bit offset ``j * width`` (little-endian). The size is therefore
``count * (width // 8) + ceil(count * (width % 8) / 8)`` bytes, never more than one byte above
the information-theoretic ``ceil(count * width / 8)``.

A payload is a list of parts (tensors of any dtype) joined into one ``uint8`` tensor, each part
padded to ``ALIGN`` bytes so that float parts can be viewed in place when payloads from many
tensors and ranks are concatenated.
"""
from typing import List, Sequence, Tuple

import torch

ALIGN = 4


def ceil_log2(n: int) -> int:
    """Bits needed to write the integers 0 .. n-1 (at least 1)."""
    return max(1, (int(n) - 1).bit_length())


def aligned(nbytes: int) -> int:
    """``nbytes`` rounded up to the payload alignment."""
    return -(-int(nbytes) // ALIGN) * ALIGN


def packed_nbytes(count: int, width: int) -> int:
    """Exact size in bytes of ``pack_bits`` for ``count`` values of ``width`` bits."""
    return count * (width // 8) + -(-count * (width % 8) // 8)


def index_dtype(d: int) -> torch.dtype:
    """Smallest signed torch integer type that holds every index 0 .. d-1 (uint8 below 257)."""
    if d <= 256:
        return torch.uint8
    for dtype in (torch.int16, torch.int32):
        if d - 1 <= torch.iinfo(dtype).max:
            return dtype
    return torch.int64


def _pack_small(values: torch.Tensor, width: int) -> torch.Tensor:
    count = values.numel()
    groups = -(-count // 8)
    padded = torch.zeros(groups * 8, dtype=torch.int64, device=values.device)
    padded[:count] = values
    shifts = torch.arange(8, device=values.device, dtype=torch.int64) * width
    word = (padded.view(groups, 8) << shifts).sum(dim=1)
    byte_shifts = torch.arange(width, device=values.device, dtype=torch.int64) * 8
    data = ((word.unsqueeze(1) >> byte_shifts) & 0xFF).to(torch.uint8).reshape(-1)
    return data[: packed_nbytes(count, width)]


def _unpack_small(data: torch.Tensor, count: int, width: int) -> torch.Tensor:
    groups = -(-count // 8)
    padded = torch.zeros(groups * width, dtype=torch.int64, device=data.device)
    padded[: packed_nbytes(count, width)] = data[: packed_nbytes(count, width)]
    byte_shifts = torch.arange(width, device=data.device, dtype=torch.int64) * 8
    word = (padded.view(groups, width) << byte_shifts).sum(dim=1)
    shifts = torch.arange(8, device=data.device, dtype=torch.int64) * width
    values = (word.unsqueeze(1) >> shifts) & ((1 << width) - 1)
    return values.reshape(-1)[:count]


def pack_bits(values: torch.Tensor, width: int, check: bool = True) -> torch.Tensor:
    """Pack non-negative integers below ``2**width`` into a ``uint8`` tensor (format above).

    ``check=False`` skips the range check: the encoders' codes are in range by construction,
    and the check reads the minimum and maximum back to the host (a synchronisation per call on
    a GPU). Out-of-range values then corrupt only their own payload.
    """
    if not 1 <= width <= 63:
        raise ValueError(f"width must be in [1, 63], got {width}")
    values = values.reshape(-1).to(torch.int64)
    if check and values.numel() and (int(values.min()) < 0 or int(values.max()) >> width):
        raise ValueError(f"pack_bits: values must lie in [0, 2**{width}), got [{int(values.min())}, "
                         f"{int(values.max())}]")
    return _pack_planes(values, width)


def _pack_planes(values: torch.Tensor, width: int) -> torch.Tensor:
    if width < 8:
        return _pack_small(values, width)
    low = (values & 0xFF).to(torch.uint8)
    if width == 8:
        return low
    return torch.cat([low, _pack_planes(values >> 8, width - 8)])


def unpack_bits(data: torch.Tensor, count: int, width: int) -> torch.Tensor:
    """Inverse of ``pack_bits``: the first ``count`` values, as int64."""
    if count == 0:
        return torch.zeros(0, dtype=torch.int64, device=data.device)
    if width < 8:
        return _unpack_small(data, count, width)
    low = data[:count].to(torch.int64)
    if width == 8:
        return low
    return low | (unpack_bits(data[count:], count, width - 8) << 8)


def as_bytes(tensor: torch.Tensor) -> torch.Tensor:
    """A flat ``uint8`` view (no copy when contiguous) of any tensor."""
    flat = tensor.reshape(-1)
    if not flat.is_contiguous():
        flat = flat.contiguous()
    return flat.view(torch.uint8)


def join_parts(parts: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate parts as bytes, each padded to ``ALIGN``, into one ``uint8`` payload."""
    total = sum(aligned(p.numel() * p.element_size()) for p in parts)
    device = parts[0].device if parts else "cpu"
    out = torch.zeros(total, dtype=torch.uint8, device=device)
    offset = 0
    for part in parts:
        data = as_bytes(part)
        out[offset: offset + data.numel()] = data
        offset += aligned(data.numel())
    return out


def layout_nbytes(layout: Sequence[Tuple[torch.dtype, int]]) -> int:
    """Payload size of a layout ``[(dtype, count), ...]`` once joined."""
    return sum(aligned(count * _itemsize(dtype)) for dtype, count in layout)


def split_parts(data: torch.Tensor, layout: Sequence[Tuple[torch.dtype, int]]) -> List[torch.Tensor]:
    """Views of the parts of a joined payload, given its layout ``[(dtype, count), ...]``."""
    data = as_bytes(data)
    need = layout_nbytes(layout[:-1]) + sum(count * _itemsize(dtype) for dtype, count in layout[-1:])
    if data.numel() < need:
        raise ValueError(f"payload has {data.numel()} bytes, its layout needs {need}")
    parts, offset = [], 0
    for dtype, count in layout:
        nbytes = count * _itemsize(dtype)
        chunk = data[offset: offset + nbytes]
        if dtype != torch.uint8:
            chunk = chunk.view(dtype) if chunk.data_ptr() % _itemsize(dtype) == 0 else chunk.clone().view(dtype)
        parts.append(chunk)
        offset += aligned(nbytes)
    return parts


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty(0, dtype=dtype).element_size()
