"""The peers on the training job's task: ``mpirun -np R python -m hvd_qsparse.bench.peers --peer NAME``.

Same model and data (``--model``, as the job: ``jobs.workload``), seeds, inner optimizer and
its defaults (``--optimizer``, ``--lr``, ``--momentum``, ``--schedule``), per-rank batches
(``shard_batches``) and evaluation as ``python -m hvd_qsparse.jobs.train``, and the same
outputs: ``--json`` summary, ``--metrics`` per-step rows, ``--bits-log``, the closing table.
Only the data-parallel machinery differs (``--peer``). Neither Horovod's optimizer nor DDP
keeps BatchNorm's statistics equal after the last forward (DDP broadcasts them before each
one), so a peer's summary scores rank 0's model and reports the spread across ranks:

==================  =========================================================================
``horovod``         ``hvd.DistributedOptimizer``, ``Compression.none``: dense fp32 allreduce
``horovod-fp16``    ``hvd.DistributedOptimizer``, ``Compression.fp16``
``ddp``             ``DistributedDataParallel`` over gloo, its default allreduce hook
``ddp-fp16``        DDP with ``fp16_compress_hook`` (16-bit allreduce)
``ddp-bf16``        DDP with ``bf16_compress_hook``
``ddp-powersgd``    DDP with the PowerSGD hook, rank ``--powersgd-rank``
``ddp-postlocalsgd``  DDP with ``post_localSGD_hook`` + ``PostLocalSGDOptimizer``, period ``--local-steps``
``torchft-diloco``  torchft 0.2.0's ``DiLoCo``, ``sync_every`` = ``--local-steps``, outer Nesterov SGD
                    (``--outer-lr``, ``--outer-momentum``); one replica group per rank
==================  =========================================================================

Horovod peers call ``hvd.init()``; DDP peers take their rank and size from mpirun
(``OMPI_COMM_WORLD_RANK``/``_SIZE``) and meet at ``MASTER_ADDR``:``MASTER_PORT`` (set
``GLOO_SOCKET_IFNAME`` to pin gloo to an interface). ``torchft-diloco`` takes the same
variables: rank 0 hosts torchft's lighthouse at ``MASTER_ADDR``:``MASTER_PORT`` and Gloo
follows ``GLOO_SOCKET_IFNAME`` (see ``torchft_peer``). The bits each peer sends are counted from
the buffers it hands to its collectives (see ``peer_optimizers``); the summary says so under
``bits_source``.
"""
import argparse
import functools
import hashlib
import os
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

import torch

from hvd_qsparse.bench.peer_optimizers import DDPPeer, HalfPrecisionDDPPeer, HorovodPeer, PostLocalSGDPeer, PowerSGDPeer
from hvd_qsparse.jobs.flags import given_flags
from hvd_qsparse.jobs.workload import (INNER_OPTIMIZERS, SCHEDULES, check_model_flags, make_inner_optimizer,
                                      make_schedule, make_task)
from hvd_qsparse.reporting.metrics import check_path
from hvd_qsparse.reporting.summary import format_table, make_recorder, run_summary, write_outputs
from hvd_qsparse.workloads.data import shard_batches
from hvd_qsparse.workloads.tasks import TASKS

BITS_SOURCE = "measured: bytes of the buffers handed to the collectives"


def _horovod(compression_name, model, optimizer, args):
    from horovod.torch import Compression
    return HorovodPeer(model, optimizer, getattr(Compression, compression_name))


def _ddp(model, optimizer, args):
    return DDPPeer(model, optimizer)


def _half(dtype, model, optimizer, args):
    return HalfPrecisionDDPPeer(model, optimizer, dtype)


def _powersgd(model, optimizer, args):
    return PowerSGDPeer(model, optimizer, rank=args.powersgd_rank, start_iter=max(2, args.warmup_steps),
                        seed=args.seed)


def _postlocalsgd(model, optimizer, args):
    return PostLocalSGDPeer(model, optimizer, period=args.local_steps, warmup=args.warmup_steps)


def _torchft_diloco(model, optimizer, args):
    # Imported here: torchft is needed by this peer only.
    from hvd_qsparse.bench.torchft_peer import TorchFTDiLoCoPeer
    return TorchFTDiLoCoPeer(model, optimizer, sync_every=args.local_steps, outer_lr=args.outer_lr,
                             outer_momentum=args.outer_momentum)


@dataclass(frozen=True)
class PeerSpec:
    """One peer: the names its summary carries, its backend and how it wraps the optimizer."""

    algorithm: str
    compressor: str
    backend: str                     # "horovod", "gloo" or "torchft" (torchft's own process groups)
    build: Callable                  # (model, torch optimizer, args) -> PeerOptimizer
    setting: str                     # the summary's setting line, formatted with the flags
    periodic: bool = False           # --local-steps is its averaging period


PEERS = {
    "horovod": PeerSpec("horovod", "none", "horovod", functools.partial(_horovod, "none"), "fp32 allreduce"),
    "horovod-fp16": PeerSpec("horovod", "fp16", "horovod", functools.partial(_horovod, "fp16"), "fp16 allreduce"),
    "ddp": PeerSpec("ddp", "none", "gloo", _ddp, "fp32 allreduce"),
    "ddp-fp16": PeerSpec("ddp", "fp16", "gloo", functools.partial(_half, "fp16"), "fp16 allreduce hook"),
    "ddp-bf16": PeerSpec("ddp", "bf16", "gloo", functools.partial(_half, "bf16"), "bf16 allreduce hook"),
    "ddp-powersgd": PeerSpec("ddp", "powersgd", "gloo", _powersgd, "powersgd rank={powersgd_rank}"),
    "ddp-postlocalsgd": PeerSpec("ddp", "postlocalsgd", "gloo", _postlocalsgd, "postlocalsgd H={local_steps}",
                                 periodic=True),
    "torchft-diloco": PeerSpec("diloco", "none", "torchft", _torchft_diloco,
                               "torchft diloco H={local_steps} outer lr={outer_lr} m={outer_momentum}",
                               periodic=True),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hvd_qsparse.bench.peers", description=__doc__.splitlines()[0])
    p.add_argument("--peer", required=True, choices=list(PEERS))
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--model", default="mlp", choices=list(TASKS))
    p.add_argument("--hidden", type=int, default=128, help="--model mlp: width of the first hidden layer")
    p.add_argument("--batch-size", type=int, default=None, help="per rank (default: the job's for the model)")
    p.add_argument("--optimizer", default="auto", choices=INNER_OPTIMIZERS)
    p.add_argument("--lr", type=float, default=None, help="default: SGD 0.05, AdamW 0.002")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD's momentum")
    p.add_argument("--schedule", default="constant", choices=SCHEDULES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--local-steps", type=int, default=1,
                   help="ddp-postlocalsgd: steps between model averages; torchft-diloco: inner steps between "
                        "outer steps (1 for every other peer)")
    p.add_argument("--warmup-steps", type=int, default=0,
                   help="ddp-postlocalsgd: steps of gradient allreduce first; ddp-powersgd: plain allreduce "
                        "for max(2, N) steps (PyTorch needs 2 with error feedback)")
    p.add_argument("--powersgd-rank", type=int, default=4, help="ddp-powersgd: matrix_approximation_rank")
    p.add_argument("--outer-lr", type=float, default=0.7, help="torchft-diloco: the outer Nesterov SGD's rate")
    p.add_argument("--outer-momentum", type=float, default=0.9, help="torchft-diloco: the outer SGD's momentum")
    p.add_argument("--json", metavar="PATH", help="write the summary as JSON (rank 0)")
    p.add_argument("--bits-log", metavar="PATH", help="per-step bits of every rank as JSON lines (rank 0)")
    p.add_argument("--metrics", metavar="PATH", help="per-step metrics, .jsonl or .csv (rank 0)")
    p.add_argument("--eval-every", type=int, default=0, metavar="N",
                   help="steps between test-accuracy rows in --metrics (default: once per epoch)")
    p.add_argument("--label", help="the run's name in --metrics and plots (default: the peer's name)")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    """Flags, checked before any rank trains (a bad value exits with code 2 and the flag's name)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    spec = PEERS[args.peer]
    check_model_flags(parser, args, given_flags(parser, argv))
    for flag, value, low in (("--epochs", args.epochs, 1), ("--hidden", args.hidden, 2),
                             ("--batch-size", args.batch_size, 1), ("--local-steps", args.local_steps, 1),
                             ("--warmup-steps", args.warmup_steps, 0), ("--powersgd-rank", args.powersgd_rank, 1),
                             ("--eval-every", args.eval_every, 0)):
        if value < low:
            parser.error(f"{flag} must be an integer >= {low}, got {value}")
    if not args.lr > 0:
        parser.error(f"--lr must be > 0, got {args.lr}")
    if not args.outer_lr > 0:
        parser.error(f"--outer-lr must be > 0, got {args.outer_lr}")
    if not 0 <= args.outer_momentum < 1:
        parser.error(f"--outer-momentum must be in [0, 1), got {args.outer_momentum}")
    if args.local_steps != 1 and not spec.periodic:
        parser.error(f"--local-steps applies to ddp-postlocalsgd and torchft-diloco only "
                     f"(--peer {args.peer} talks every step), got {args.local_steps}")
    if args.metrics:
        try:
            check_path(args.metrics)
        except ValueError as err:
            parser.error(str(err))
    # The job's summary and metrics read these names.
    args.algorithm, args.compressor, args.ratio, args.levels = spec.algorithm, spec.compressor, None, None
    args.label = args.label or args.peer
    args.setting = spec.setting.format(**vars(args))
    args.tensorboard = None
    args.buffers = "local"  # see the module's docstring: rank 0's model is scored
    return args


class MPIComm:
    """The three calls the job's recorder and summary make on ``hvd``, over mpi4py, for the DDP peers.

    Not over Gloo: a Gloo object gather as the last collective before exit can abort the
    process (its worker thread frees the work while Python finalizes: "terminate called
    without an active exception", 2 runs in 12 here at 4.9M parameters).
    """

    def __init__(self):
        from mpi4py import MPI
        self.world = MPI.COMM_WORLD

    def rank(self) -> int:
        return self.world.Get_rank()

    def size(self) -> int:
        return self.world.Get_size()

    def allgather_object(self, obj, name=None) -> list:
        return self.world.allgather(obj)


def init_backend(backend: str, timeout_s: float = 300.0):
    """Start the peer's communication; returns its ``hvd``-like object.

    Raises:
        ValueError: a gloo or torchft peer not started by mpirun, or without
            ``MASTER_ADDR``/``MASTER_PORT``.
    """
    if backend == "horovod":
        import horovod.torch as hvd
        hvd.init()
        return hvd
    missing = [k for k in ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
               if k not in os.environ]
    if missing:
        raise ValueError(f"DDP and torchft peers run under mpirun with MASTER_ADDR and MASTER_PORT set; "
                         f"missing: {missing}")
    if backend == "torchft":
        return MPIComm()  # the peer starts torchft's lighthouse, managers and process groups
    torch.distributed.init_process_group("gloo", rank=int(os.environ["OMPI_COMM_WORLD_RANK"]),
                                         world_size=int(os.environ["OMPI_COMM_WORLD_SIZE"]),
                                         timeout=timedelta(seconds=timeout_s))
    return MPIComm()


def train(args: argparse.Namespace, comm) -> dict:
    """Run the peer on this rank; returns the job's summary (identical on every rank)."""
    task = make_task(args)
    train_set, test_set = task.splits(args.seed)
    model = task.build_model(args.seed)
    peer = PEERS[args.peer].build(model, make_inner_optimizer(args, model), args)
    batches_for = functools.partial(shard_batches, len(train_set), comm.rank(), comm.size(), args.batch_size,
                                    args.seed)
    steps_per_epoch = len(batches_for(0))
    recorder = make_recorder(args, comm, peer, model, test_set, steps_per_epoch, task)
    schedule = make_schedule(args, peer.optimizer, args.epochs * steps_per_epoch)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        for batch in batches_for(epoch):
            step_start = time.perf_counter()
            peer.zero_grad()
            loss = task.loss(peer.module(train_set.x[batch]), train_set.y[batch])
            loss.backward()
            peer.step()
            if schedule is not None:
                schedule.step()
            if recorder is not None:
                now = time.perf_counter()
                recorder.after_step(epoch, loss.item(), now - step_start, now - start)
    wall = time.perf_counter() - start
    if recorder is not None and recorder.log is not None:
        recorder.log.close()
    peer.load_synchronized_model()
    summary = run_summary(args, comm, peer, model, test_set, wall, task)
    summary.update(peer=args.peer, label=args.label, bits_source=BITS_SOURCE,
                   parameters_agree=_parameters_agree(comm, peer))
    peer.close()
    return summary


def _parameters_agree(comm, peer) -> bool:
    """Whether every rank ends with bitwise the same trained parameters (a digest of each rank's
    bytes: the score spread can be 0 for models that differ)."""
    digest = hashlib.sha256()
    for p in peer.params:
        digest.update(p.detach().cpu().contiguous().numpy().tobytes())
    return len(set(comm.allgather_object(digest.hexdigest(), name="summary.digest"))) == 1


def main(argv=None) -> int:
    args = parse_args(argv)
    spec = PEERS[args.peer]
    torch.set_num_threads(1)
    comm = init_backend(spec.backend)
    try:
        summary = train(args, comm)
    except Exception:
        if comm.size() == 1:
            raise
        # The other ranks would wait in a collective: leave at once, so mpirun ends the whole run.
        traceback.print_exc()
        print(f"rank {comm.rank()} of {comm.size()} failed; ending the run", file=sys.stderr, flush=True)
        os._exit(1)
    if comm.rank() == 0:
        print(format_table(summary), flush=True)
        print(f"peer={args.peer} ranks={summary['ranks']} steps={summary['steps']} d={summary['parameters']} "
              f"bits per rank={summary['bits_per_rank']} ({BITS_SOURCE})", flush=True)
        write_outputs(args, summary)
    if spec.backend == "gloo":
        comm.world.Barrier()
        torch.distributed.destroy_process_group()
    if spec.backend in ("gloo", "torchft"):
        # torchft too: its Rust runtime's and Gloo's threads must not meet Python's finalization.
        _leave_without_finalizing()
    return 0


def _leave_without_finalizing() -> None:
    """End MPI and exit 0 without finalizing the interpreter. A Gloo worker thread can still be
    finishing a future's Python callback when Python finalizes; Python 3.11 then ends that thread
    with pthread_exit inside C++ code, which aborts the process ("terminate called without an
    active exception", exit code 134) after the run's files are written."""
    from mpi4py import MPI
    sys.stdout.flush()
    sys.stderr.flush()
    MPI.Finalize()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
