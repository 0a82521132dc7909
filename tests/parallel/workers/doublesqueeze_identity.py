"""DoubleSqueeze with the identity compressor is synchronous SGD: stock Horovod's parameters to
1e-6 after every layout, memory setting and shard scope, and the bits are exactly the buffers'
sizes."""
import horovod.torch as hvd
import torch
from common import flat_params, make_model, train_steps
from identity_matches_horovod import ATOL, STEPS, stock

import hvd_qsparse
from hvd_qsparse.comm import shard_sizes


def ours(layout, server_memory, scope="flat"):
    model = make_model()
    inner = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt = hvd_qsparse.DistributedOptimizer(inner, model.named_parameters(), algorithm="doublesqueeze",
                                           compressor="none", server_layout=layout, server_memory=server_memory,
                                           shard_scope=scope)
    opt.broadcast_state()
    train_steps(model, opt, hvd.rank(), 0, STEPS)
    d = opt.flat_numel()
    if scope == "tensor":  # region rank of every tensor
        own_reply = sum(p.numel() // hvd.size() + (hvd.rank() < p.numel() % hvd.size()) for p in model.parameters())
        own_reply = own_reply if layout == "sharded" else d * (hvd.rank() == 0)
    else:
        own_reply = shard_sizes(d, hvd.size())[hvd.rank()] if layout == "sharded" else d * (hvd.rank() == 0)
    per_step = 32 * (d + own_reply)  # fp32: the whole message to alltoall + this rank's replies
    assert [s.sent for s in opt.bits.history] == [per_step] * STEPS, (layout, opt.bits.history)
    return flat_params(model)


def main():
    hvd.init()
    reference = stock(hvd.Compression.none)
    assert (reference - flat_params(make_model())).abs().max() > 1e-3, "training did not move the parameters"
    for layout in ("sharded", "ps"):
        for server_memory in (True, False):
            diff = (ours(layout, server_memory) - reference).abs().max().item()
            assert diff <= ATOL, f"layout={layout} server_memory={server_memory}: max |ours - horovod| = {diff}"
            print(f"rank {hvd.rank()}: {layout} memory={server_memory} max diff {diff:.2e}", flush=True)
        diff = (ours(layout, True, "tensor") - reference).abs().max().item()
        assert diff <= ATOL, f"layout={layout} shard_scope=tensor: max |ours - horovod| = {diff}"
    print(f"rank {hvd.rank()}: OK", flush=True)


if __name__ == "__main__":
    main()
