"""BatchNorm statistics under real ranks: equal on every rank after each sync when tracked,
different when not, and their bytes counted in the bits.

Usage: buffer_sync.py ALGORITHM H TRACK  (TRACK 1: named_buffers given; 0: left per rank)
"""
import sys

import horovod.torch as hvd
import torch
from torch import nn

import hvd_qsparse


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 10), nn.BatchNorm1d(10))


def gathered_buffers(model, step):
    flat = torch.cat([b.reshape(-1).float() for _, b in model.named_buffers() if b.is_floating_point()])
    return hvd.allgather(flat.unsqueeze(0), name=f"check.buffers.{step}")


def main(algorithm: str, local_steps: int, track: bool):
    hvd.init()
    model = make_model()
    options = {"qsparse": {"compressor": "topk+sign", "ratio": 0.2, "local_steps": local_steps},
               "risgd": {"local_steps": local_steps}, "doublesqueeze": {"compressor": "topk+sign", "ratio": 0.2},
               "gdsec": {}}[algorithm]
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.05), model.named_parameters(),
                                           algorithm=algorithm,
                                           named_buffers=model.named_buffers() if track else None, **options)
    opt.broadcast_state()
    buffer_numel = sum(b.numel() for _, b in model.named_buffers() if b.is_floating_point())
    differed = False
    for step in range(6):
        gen = torch.Generator().manual_seed(100 * hvd.rank() + step)
        # every rank sees data of its own scale, so its statistics differ from the others'
        x = torch.randn(8, 1, 8, 8, generator=gen) * (1 + hvd.rank())
        y = torch.randint(0, 10, (8,), generator=gen)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        synced = local_steps == 1 or (step + 1) % local_steps == 0
        rows = gathered_buffers(model, step)
        same = all(torch.equal(rows[0], row) for row in rows)
        if track and synced:
            assert same, f"step {step}: buffers differ across ranks after a sync: {(rows[0] - rows[1]).abs().max()}"
            record = [s for s in opt.bits.history if s.step == step]
            assert record and record[0].sent >= (32 * buffer_numel if algorithm != "qsparse" or
                                                 local_steps > 1 or hvd.rank() == 0 else 0), record
        differed |= not same
    if not track:
        assert differed, "untracked buffers should follow each rank's own data"
    else:  # local steps after the last sync moved each rank's buffers: the agreed model brings them back
        opt.load_synchronized_model()
        rows = gathered_buffers(model, "end")
        assert all(torch.equal(rows[0], row) for row in rows), "buffers differ after load_synchronized_model"
    print(f"rank {hvd.rank()}: OK {algorithm} H={local_steps} track={track}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1")
