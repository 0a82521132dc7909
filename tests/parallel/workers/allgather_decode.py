"""Each rank compresses its own tensors; a fused allgather exchanges them; every rank decodes.

Checks on every rank: the decoded sum equals the sum of each rank's own decompress (each rank
regenerates the others' inputs from their seeds), and all ranks hold bit-identical results.
``SparseOrDenseExchange`` must take the dense allreduce exactly when the ranks' payloads
outweigh two dense fp32 vectors (topk at ratio 1.0), the allgather otherwise (ratio 0.1), and
count the bytes of the path it took.
"""
import sys

import horovod.torch as hvd
import torch

from hvd_qsparse.comm import AllgatherExchange, AllreduceExchange, Message, SparseOrDenseExchange
from hvd_qsparse.comm.sparse_or_dense import DENSE_FACTOR
from hvd_qsparse.compression import available, create
from hvd_qsparse.ops import aligned, derive_seed

SHAPES = [(1000,), (33, 17), (7,), (1,), (4, 4, 4)]


def inputs(rank):
    gen = torch.Generator().manual_seed(1234 + rank)
    return [torch.randn(shape, generator=gen) for shape in SHAPES]


def compress_all(compressor, rank, step):
    messages = []
    for i, tensor in enumerate(inputs(rank)):
        payload, ctx = compressor.compress(tensor, seed=derive_seed(7, step, f"t{i}"), stream=rank)
        messages.append(Message(payload, ctx))
    return messages


def check(name, exchange_cls, fixed_size=True, ratio=0.1):
    compressor = create(name, ratio=ratio, levels=16)
    if exchange_cls is AllgatherExchange:
        exchange = exchange_cls(compressor, fixed_size)
    else:
        exchange = exchange_cls(compressor)
    mine = compress_all(compressor, hvd.rank(), step=3)
    sums = exchange.exchange(mine, name=f"{name}.{fixed_size}.{exchange_cls.__name__}.{ratio}")
    for i, total in enumerate(sums):
        expected = sum(compressor.decompress(m[i].payload, m[i].ctx).reshape(-1).float()
                       for m in (compress_all(compressor, r, 3) for r in range(hvd.size())))
        if exchange_cls is AllreduceExchange and name == "fp16":
            expected = expected.half().float()  # an fp16 allreduce sums in fp16 on the wire
        atol = 2e-3 * float(expected.abs().max()) if name == "fp16" else 1e-6
        assert torch.allclose(total, expected, rtol=1e-5, atol=atol), \
            (name, i, (total - expected).abs().max())
    flat = torch.cat(sums)
    everyone = hvd.allgather(flat.unsqueeze(0), name=f"{name}.{fixed_size}.{exchange_cls.__name__}.{ratio}.check")
    assert all(torch.equal(everyone[0], everyone[r]) for r in range(hvd.size())), f"{name}: ranks disagree"
    return exchange, mine


def check_sparse_or_dense(ratio):
    """The path taken and its bytes follow the payload sizes of all ranks."""
    exchange, mine = check("topk", SparseOrDenseExchange, ratio=ratio)
    pending = exchange.start(mine, name=f"sod.{ratio}")
    pending.wait()
    payload = [aligned(m.payload.numel() * m.payload.element_size()) for m in mine]
    numel = sum(m.ctx.numel for m in mine)
    dense = sum(hvd.allgather_object(sum(payload), name=f"sod.{ratio}.sizes")) > DENSE_FACTOR * 4 * numel
    assert pending.dense == dense and (exchange.dense_steps, exchange.sparse_steps) == ((2, 0) if dense else (0, 2))
    assert pending.sent_bytes == 8 * len(mine) + (4 * numel if dense else sum(payload)), pending.sent_bytes
    return dense


def main():
    hvd.init()
    for name in available():
        check(name, AllgatherExchange, fixed_size=True)
        check(name, AllgatherExchange, fixed_size=False)
    for name in ("none", "fp16"):
        check(name, AllreduceExchange)
    assert [check_sparse_or_dense(0.1), check_sparse_or_dense(1.0)] == [False, True]
    try:
        AllreduceExchange(create("topk", ratio=0.1))
        raise AssertionError("allreduce accepted a non-summable compressor")
    except ValueError as err:
        assert "summable" in str(err)
    print(f"rank {hvd.rank()}/{hvd.size()}: OK {len(available())} compressors", flush=True)


if __name__ == "__main__":
    sys.exit(main())
