"""Bit packing, index types and payload framing (hvd_qsparse.ops.packing)."""
import math

import pytest
import torch

from hvd_qsparse.ops import (
    ALIGN, aligned, as_bytes, ceil_log2, index_dtype, join_parts, layout_nbytes, pack_bits,
    packed_nbytes, split_parts, unpack_bits,
)


def _values(count, width, seed):
    gen = torch.Generator().manual_seed(seed)
    high = 1 << width
    vals = torch.randint(0, high, (count,), generator=gen, dtype=torch.int64)
    if count >= 2:  # always include both extremes
        vals[0] = 0
        vals[-1] = high - 1
    return vals


# --- pack_bits / unpack_bits ---------------------------------------------------------------

@pytest.mark.parametrize("width", range(1, 21))
@pytest.mark.parametrize("count", [0, 1, 2, 7, 8, 9, 15, 17, 1001])
def test_pack_round_trip_and_exact_size(width, count):
    vals = _values(count, width, seed=width * 1000 + count)
    packed = pack_bits(vals, width)
    assert packed.dtype == torch.uint8
    assert packed.dim() == 1
    assert packed.numel() == packed_nbytes(count, width)
    out = unpack_bits(packed, count, width)
    assert out.dtype == torch.int64
    assert torch.equal(out, vals)


@pytest.mark.parametrize("width", [1, 3, 13, 20])
def test_pack_round_trip_large_odd_count(width):
    count = 1000003
    vals = _values(count, width, seed=width)
    packed = pack_bits(vals, width)
    assert packed.numel() == packed_nbytes(count, width)
    assert torch.equal(unpack_bits(packed, count, width), vals)


@pytest.mark.parametrize("width", [24, 31, 32, 40, 63])
def test_pack_round_trip_wide(width):
    gen = torch.Generator().manual_seed(width)
    high = (1 << width) - 1 if width == 63 else 1 << width
    vals = torch.randint(0, high, (37,), generator=gen, dtype=torch.int64)
    vals[0] = high - 1
    packed = pack_bits(vals, width)
    assert packed.numel() == packed_nbytes(37, width)
    assert torch.equal(unpack_bits(packed, 37, width), vals)


@pytest.mark.parametrize("width", range(1, 33))
@pytest.mark.parametrize("count", [0, 1, 5, 8, 9, 1000003])
def test_packed_nbytes_at_most_one_byte_above_information(width, count):
    info = math.ceil(count * width / 8)
    assert info <= packed_nbytes(count, width) <= info + 1


def test_pack_format_width1_little_endian_bits():
    # value j of a group of 8 sits at bit j: [1,0,1,1,0,0,0,1] -> 0b10001101
    packed = pack_bits(torch.tensor([1, 0, 1, 1, 0, 0, 0, 1, 1]), 1)
    assert packed.tolist() == [0b10001101, 0b00000001]


def test_pack_format_width3_group_of_eight_in_three_bytes():
    vals = torch.tensor([1, 2, 3, 4, 5, 6, 7, 0])
    word = sum(int(v) << (3 * j) for j, v in enumerate(vals.tolist()))
    expected = [(word >> (8 * b)) & 0xFF for b in range(3)]
    assert pack_bits(vals, 3).tolist() == expected


def test_pack_format_width_ge_8_low_byte_plane_first():
    vals = torch.tensor([0x1FF, 0x002, 0x103])  # width 9: a plane of low bytes, then 1-bit plane
    packed = pack_bits(vals, 9)
    assert packed.tolist() == [0xFF, 0x02, 0x03, 0b101]


def test_pack_accepts_any_integer_dtype_and_shape():
    vals = torch.arange(12, dtype=torch.int32).reshape(3, 4)
    assert torch.equal(unpack_bits(pack_bits(vals, 4), 12, 4), torch.arange(12))


@pytest.mark.parametrize("width", [0, 64, -1])
def test_pack_rejects_bad_width(width):
    with pytest.raises(ValueError, match="width"):
        pack_bits(torch.tensor([0]), width)


# --- ceil_log2 / index_dtype / aligned ----------------------------------------------------

@pytest.mark.parametrize("n,bits", [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (256, 8), (257, 9),
                                    (2**20, 20), (2**20 + 1, 21)])
def test_ceil_log2(n, bits):
    assert ceil_log2(n) == bits
    assert (n - 1) < 2 ** bits


@pytest.mark.parametrize("d,dtype", [(1, torch.uint8), (255, torch.uint8), (256, torch.uint8),
                                     (257, torch.int16), (32768, torch.int16),
                                     (32769, torch.int32), (2**31, torch.int32),
                                     (2**31 + 1, torch.int64)])
def test_index_dtype_boundaries(d, dtype):
    assert index_dtype(d) == dtype
    assert torch.iinfo(dtype).max >= d - 1  # holds the largest index


@pytest.mark.parametrize("n,expected", [(0, 0), (1, 4), (3, 4), (4, 4), (5, 8), (4097, 4100)])
def test_aligned(n, expected):
    assert ALIGN == 4
    assert aligned(n) == expected


# --- join_parts / split_parts ---------------------------------------------------------------

def _mixed_parts():
    gen = torch.Generator().manual_seed(7)
    return [
        torch.tensor([1, 2, 3], dtype=torch.uint8),                  # 3 bytes -> padded to 4
        torch.randn(1, generator=gen),                                # fp32 scalar-ish
        torch.randn(3, generator=gen, dtype=torch.float64),           # 24 bytes (offset 8: not 8-aligned)
        torch.tensor([-7], dtype=torch.int16),                        # 2 bytes -> 4
        torch.randn(5, generator=gen).half(),                         # 10 bytes -> 12
        torch.randn(3, generator=gen).bfloat16(),                     # 6 bytes -> 8
        torch.tensor([True, False, True]),                            # 3 bytes -> 4
        torch.tensor([2**40, -1], dtype=torch.int64),                 # 16 bytes
        torch.zeros(0, dtype=torch.float32),                          # empty part
        torch.randn(2, 3, generator=gen).t(),                         # non-contiguous fp32
    ]


def test_join_split_round_trip_mixed_dtypes():
    parts = _mixed_parts()
    layout = [(p.dtype, p.numel()) for p in parts]
    joined = join_parts(parts)
    assert joined.dtype == torch.uint8 and joined.dim() == 1
    assert joined.numel() == layout_nbytes(layout)
    assert joined.numel() == sum(aligned(p.numel() * p.element_size()) for p in parts)
    out = split_parts(joined, layout)
    assert len(out) == len(parts)
    for original, got in zip(parts, out):
        assert got.dtype == original.dtype
        assert torch.equal(got, original.reshape(-1))


def test_join_pads_each_part_with_zeros_to_alignment():
    parts = [torch.tensor([0xAB], dtype=torch.uint8), torch.tensor([1.0])]
    joined = join_parts(parts)
    assert joined.numel() == 8
    assert joined[:4].tolist() == [0xAB, 0, 0, 0]
    assert torch.equal(joined[4:8], as_bytes(torch.tensor([1.0])))


def test_split_float_part_is_view_when_aligned():
    parts = [torch.tensor([1, 2, 3], dtype=torch.uint8), torch.arange(4, dtype=torch.float32)]
    joined = join_parts(parts)
    _, floats = split_parts(joined, [(torch.uint8, 3), (torch.float32, 4)])
    assert floats.untyped_storage().data_ptr() == joined.untyped_storage().data_ptr()
    assert torch.equal(floats, torch.arange(4, dtype=torch.float32))


def test_split_from_fused_buffer_at_aligned_offset():
    parts_a = [torch.tensor([9], dtype=torch.uint8), torch.randn(3, dtype=torch.float64)]
    parts_b = _mixed_parts()
    a, b = join_parts(parts_a), join_parts(parts_b)
    fused = torch.cat([a, b])
    layout_b = [(p.dtype, p.numel()) for p in parts_b]
    out = split_parts(fused[a.numel():], layout_b)
    for original, got in zip(parts_b, out):
        assert torch.equal(got, original.reshape(-1))


def test_split_accepts_non_uint8_payload_view():
    parts = [torch.arange(6, dtype=torch.float32)]
    out = split_parts(join_parts(parts).view(torch.float32), [(torch.float32, 6)])
    assert torch.equal(out[0], parts[0])


def test_split_refuses_short_payload():
    joined = join_parts([torch.zeros(3)])
    with pytest.raises(ValueError, match="bytes"):
        split_parts(joined[:8], [(torch.float32, 3)])


def test_join_empty_list():
    assert join_parts([]).numel() == 0
    assert layout_nbytes([]) == 0
