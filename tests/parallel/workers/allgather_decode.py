"""Each rank compresses its own tensors; a fused allgather exchanges them; every rank decodes.

Checks on every rank: the decoded sum equals the sum of each rank's own decompress (each rank
regenerates the others' inputs from their seeds), and all ranks hold bit-identical results.
"""
import sys

import horovod.torch as hvd
import torch

from hvd_qsparse.comm import AllgatherExchange, AllreduceExchange, Message
from hvd_qsparse.compression import available, create
from hvd_qsparse.ops import derive_seed

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


def check(name, exchange_cls, fixed_size=True):
    compressor = create(name, ratio=0.1, levels=16)
    exchange = exchange_cls(compressor) if exchange_cls is AllreduceExchange else exchange_cls(compressor, fixed_size)
    mine = compress_all(compressor, hvd.rank(), step=3)
    sums = exchange.exchange(mine, name=f"{name}.{fixed_size}")
    for i, total in enumerate(sums):
        expected = sum(compressor.decompress(m[i].payload, m[i].ctx).reshape(-1).float()
                       for m in (compress_all(compressor, r, 3) for r in range(hvd.size())))
        if exchange_cls is AllreduceExchange and name == "fp16":
            expected = expected.half().float()  # an fp16 allreduce sums in fp16 on the wire
        atol = 2e-3 * float(expected.abs().max()) if name == "fp16" else 1e-6
        assert torch.allclose(total, expected, rtol=1e-5, atol=atol), \
            (name, i, (total - expected).abs().max())
    flat = torch.cat(sums)
    everyone = hvd.allgather(flat.unsqueeze(0), name=f"{name}.{fixed_size}.check")
    assert all(torch.equal(everyone[0], everyone[r]) for r in range(hvd.size())), f"{name}: ranks disagree"


def main():
    hvd.init()
    for name in available():
        check(name, AllgatherExchange, fixed_size=True)
        check(name, AllgatherExchange, fixed_size=False)
    for name in ("none", "fp16"):
        check(name, AllreduceExchange)
    try:
        AllreduceExchange(create("topk", ratio=0.1))
        raise AssertionError("allreduce accepted a non-summable compressor")
    except ValueError as err:
        assert "summable" in str(err)
    print(f"rank {hvd.rank()}/{hvd.size()}: OK {len(available())} compressors", flush=True)


if __name__ == "__main__":
    sys.exit(main())
