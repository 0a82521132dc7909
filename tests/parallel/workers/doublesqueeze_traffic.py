"""Per-rank bytes of one step: DoubleSqueeze sharded, DoubleSqueeze parameter server, and a plain
allgather of every rank's payload (the same worker payloads), each checked against the sizes
the compressor's layout gives, then printed as one JSON line per (rank, layout)."""
import json

import horovod.torch as hvd
import torch
from torch import nn

import hvd_qsparse
from hvd_qsparse.comm import shard_sizes
from hvd_qsparse.ops import join_parts

COMPRESSOR, STEPS = "sign", 2


def make_model():
    torch.manual_seed(0)
    return nn.Linear(256, 255)  # d = 65535: uneven shards for 2 and 4 ranks


def train(layout):
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model.named_parameters(),
                                           algorithm="doublesqueeze", compressor=COMPRESSOR, server_layout=layout)
    opt.broadcast_state()
    gen = torch.Generator().manual_seed(hvd.rank())
    for _ in range(STEPS):
        opt.zero_grad()
        model(torch.randn(8, 256, generator=gen)).pow(2).mean().backward()
        opt.step()
    return opt


def report(layout, sent_bits, received_bits, expected_sent, expected_received):
    assert (sent_bits, received_bits) == (8 * expected_sent, 8 * expected_received), \
        (layout, sent_bits, received_bits, expected_sent, expected_received)
    print(json.dumps({"np": hvd.size(), "rank": hvd.rank(), "layout": layout,
                      "sent": sent_bits // 8, "received": received_bits // 8}), flush=True)


def main():
    hvd.init()
    rank, size = hvd.rank(), hvd.size()
    sharded = train("sharded")
    comp = sharded.algorithm_state.compressor
    shard_bytes = [comp.payload_nbytes(n) for n in shard_sizes(sharded.flat_numel(), size)]
    whole = sum(shard_bytes)  # one rank's worker message, every shard
    report("sharded", sharded.bits.history[-1].sent, sharded.algorithm_state.bits_received // STEPS,
           whole + shard_bytes[rank], 2 * (size - 1) * shard_bytes[rank])
    ps = train("ps")
    root = rank == 0
    report("ps", ps.bits.history[-1].sent, ps.algorithm_state.bits_received // STEPS,
           whole * (2 if root else 1), (size - 1) * whole if root else whole)
    own = join_parts([m.payload for m in sharded.algorithm_state.last_messages])
    gathered = hvd.allgather(own, name="plain.allgather")
    report("allgather", 8 * own.numel(), 8 * (gathered.numel() - own.numel()), whole, (size - 1) * whole)


if __name__ == "__main__":
    main()
