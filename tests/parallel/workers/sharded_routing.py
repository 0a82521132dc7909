"""The sharded exchange routes every region to its owner once, and every exchange counts its
bytes both ways as the buffers' sizes.

Each rank regenerates every rank's inputs from their seeds, so it knows the true sums. Groups
of 1001, 5 and 2 entries: with R = 3 or 4 the small ones leave regions of one entry or none.
"""
import horovod.torch as hvd
import torch

from hvd_qsparse.algorithms.doublesqueeze_server import DoubleSqueezeServer
from hvd_qsparse.comm import (AllgatherExchange, AllreduceExchange, DecodedAllreduceExchange, Message,
                              ParameterServerExchange, ShardedServerExchange, SparseOrDenseExchange, ring_share)
from hvd_qsparse.comm.two_pass import owner
from hvd_qsparse.compression import create
from hvd_qsparse.error_feedback import ErrorFeedback
from hvd_qsparse.ops import aligned, derive_seed
from hvd_qsparse.optim.pipeline import region_values

GROUPS = {"big": 1001, "small": 5, "tiny": 2}


def values(rank):
    gen = torch.Generator().manual_seed(99 + rank)
    return {name: torch.randn(n, generator=gen) for name, n in GROUPS.items()}


def messages(compressor, rank, regions):
    out = []
    for name, value in values(rank).items():
        for key, part in region_values(name, value, regions):
            payload, ctx = compressor.compress(part, seed=derive_seed(3, 0, key), stream=rank)
            out.append(Message(payload, ctx, key=key))
    return out


def decoded_values(compressor, message):
    return compressor.decompress(message.payload, message.ctx).reshape(-1).float()


def check_routing(name, ratio):
    rank, size = hvd.rank(), hvd.size()
    compressor = create(name, ratio=ratio)
    everyone = [messages(compressor, r, size) for r in range(size)]
    truth = [sum(decoded_values(compressor, m[i]) for m in everyone) for i in range(len(everyone[0]))]
    served = []

    def serve(index, payloads, ctx, key):
        served.append(index)
        return DoubleSqueezeServer(compressor, ErrorFeedback(), average=False).serve(index, payloads, ctx, key)

    exchange = ShardedServerExchange(compressor, serve=serve)
    result = exchange.start(everyone[rank], name=f"route.{name}")
    assert served == [m for m in range(len(truth)) if owner(m, size) == rank], (rank, served)
    for m in served:  # each owner summed exactly the R payloads of its region
        assert torch.allclose(result.means[m], truth[m], atol=1e-6), (name, m)
    counts = hvd.allreduce(torch.bincount(torch.tensor(served, dtype=torch.long), minlength=len(truth)), op=hvd.Sum,
                           name=f"route.count.{name}")
    assert counts.tolist() == [1] * len(truth), counts  # every region served once, by one rank
    totals = result.wait()
    assert [t.numel() for t in totals] == list(GROUPS.values())
    flat = torch.cat(totals)
    assert all(torch.equal(row, flat) for row in hvd.allgather(flat.unsqueeze(0), name=f"route.same.{name}"))
    if name == "none":  # the identity: the update is the exact sum of every rank's values
        exact = torch.cat([sum(values(r)[g] for r in range(size)) for g in GROUPS])
        assert torch.allclose(flat, exact, atol=1e-6), (flat - exact).abs().max()
    return compressor, everyone


def check_bytes_sharded(compressor, everyone, flag):
    rank, size = hvd.rank(), hvd.size()
    sizes = [compressor.payload_nbytes(m.ctx.numel) for m in everyone[rank]]
    mine = [m for m in range(len(sizes)) if owner(m, size) == rank]
    exchange = ShardedServerExchange(compressor, serve=DoubleSqueezeServer(compressor, ErrorFeedback(),
                                                                           average=False).serve)
    result = exchange.start(everyone[rank], name=f"bytes.sharded.{flag}", flag=flag)
    assert result.sent_bytes == sum(sizes) + sum(sizes[m] for m in mine)
    assert result.received_bytes == (size - 1) * sum(sizes[m] for m in mine) + sum(
        s for m, s in enumerate(sizes) if m not in mine)
    assert result.control_bytes == (0 if flag is None else 4 * size)
    if flag is not None:
        assert result.flags == [0] * size


def nbytes(compressor, messages):
    return sum(aligned(compressor.payload_nbytes(m.ctx.numel)) for m in messages)


def check_bytes_others(compressor, regions, everyone):
    rank, size = hvd.rank(), hvd.size()
    whole = nbytes(compressor, regions[rank])
    serve = DoubleSqueezeServer(compressor, ErrorFeedback()).serve
    ps = ParameterServerExchange(compressor, serve=serve).start(regions[rank], name="bytes.ps")
    root = rank == 0
    assert (ps.sent_bytes, ps.received_bytes) == ((2 * whole, (size - 1) * whole) if root else (whole, whole))
    own = everyone[rank]
    whole = nbytes(compressor, own)
    fixed = AllgatherExchange(compressor).start(own, name="bytes.fixed")
    fixed.wait()
    assert (fixed.sent_bytes, fixed.received_bytes) == (whole, (size - 1) * whole)
    headers = 8 * len(own)
    variable = AllgatherExchange(compressor, fixed_size=False).start(own, name="bytes.variable")
    variable.wait()
    assert (variable.sent_bytes, variable.received_bytes) == (whole + headers, (size - 1) * (whole + headers))
    sparse = SparseOrDenseExchange(compressor).start(own, name="bytes.sod")
    sparse.wait()
    assert not sparse.dense and (sparse.sent_bytes, sparse.received_bytes) == (whole + headers,
                                                                            (size - 1) * (whole + headers))
    dense = [Message(*create("none").compress(v, seed=None, stream=rank)) for v in values(rank).values()]
    reduced = AllreduceExchange(create("none")).start(dense, name="bytes.allreduce")
    reduced.wait()
    dense_bytes = 4 * sum(GROUPS.values())
    assert (reduced.sent_bytes, reduced.received_bytes) == (dense_bytes, ring_share(dense_bytes, size))
    assert ring_share(dense_bytes, size) == 2 * (size - 1) * dense_bytes // size
    decoded = DecodedAllreduceExchange(compressor).start(own, name="bytes.dense")
    sums = decoded.wait()
    numel = sum(m.ctx.numel for m in own)
    assert decoded.dense and (decoded.sent_bytes, decoded.received_bytes) == (4 * numel, ring_share(4 * numel, size))
    truth = [sum(decoded_values(compressor, e[i]) for e in everyone) for i in range(len(own))]
    assert all(torch.allclose(s, t, atol=1e-5) for s, t in zip(sums, truth))


def main():
    hvd.init()
    for name, ratio in (("none", None), ("topk", 0.3), ("topk+sign", 0.3), ("sign", None), ("randk+qsgd", 0.5)):
        compressor, everyone = check_routing(name, ratio)
        if name == "topk":
            check_bytes_sharded(compressor, everyone, None)
            check_bytes_sharded(compressor, everyone, 0)
            check_bytes_others(compressor, everyone, [messages(compressor, r, 1) for r in range(hvd.size())])
    print(f"rank {hvd.rank()}: OK", flush=True)


if __name__ == "__main__":
    main()
