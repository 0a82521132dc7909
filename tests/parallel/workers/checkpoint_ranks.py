"""Checkpoint files under real ranks: ``save DIR`` writes one per rank; ``swap DIR`` makes each
rank load another rank's file; ``grow DIR`` loads them into a job of another size. Both are
refused on every rank, naming the file and what differs."""
import sys

import horovod.torch as hvd
import torch

import hvd_qsparse
from hvd_qsparse import CheckpointError, load_checkpoint, save_checkpoint

from common import make_model, train_steps


def build():
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model.named_parameters(),
                                           compressor="topk+sign", ratio=0.3, local_steps=2)
    return model, opt


def refused(path: str, needle: str) -> None:
    model, opt = build()
    try:
        load_checkpoint(path, model, opt)
    except CheckpointError as error:
        assert needle in str(error) and path in str(error), str(error)
        print(f"rank {hvd.rank()}: refused: {error}", flush=True)
        return
    raise AssertionError(f"rank {hvd.rank()}: {path} was accepted")


def main(mode: str, folder: str) -> None:
    hvd.init()
    rank, size = hvd.rank(), hvd.size()
    if mode == "save":
        model, opt = build()
        opt.broadcast_state()
        train_steps(model, opt, rank, 0, 3)
        save_checkpoint(f"{folder}/ckpt.{rank}", model, opt)
    elif mode == "swap":
        refused(f"{folder}/ckpt.{(rank + 1) % size}", f"written by rank {(rank + 1) % size}; this is rank {rank}")
    elif mode == "grow":
        needle = "written by a 2-rank job; this job has 3 ranks" if rank < 2 else "No such file"
        refused(f"{folder}/ckpt.{rank}", needle)
    print(f"rank {rank}: OK", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
