"""The torch.distributed communicator: ``HorovodCommunicator``'s handle over a process group.

For users who launch with ``torchrun`` (or any ``torch.distributed`` set-up) and have no
Horovod: Gloo on CPU tensors, NCCL on CUDA ones. Every exchange and algorithm above it runs
unchanged, with the same byte accounting, because it only ever calls these methods. Where it
differs from the Horovod path (each difference is a property of torch.distributed, not of the
algorithms):

- Allgathers of different sizes per rank are padded to the largest and trimmed (the padding is
  not counted: the bits stay those of the payloads, as under Horovod, which sends no padding).
- ``allgather_async`` and ``alltoall`` block until done (their sizes must be known first);
  ``allreduce_async`` is truly asynchronous. Overlap of compression with transfer is therefore
  smaller than under Horovod's background thread.
- No ``hvd.join()`` (uneven data must be evened out by the script, as under DDP), no elastic
  mode, and no MPI one-sided window: ``qsparse-async`` and elastic RI-SGD refuse this backend.
- Names are not needed for matching (collectives match by call order, which every algorithm
  here keeps identical on every rank); they are accepted and ignored.
"""
from typing import Callable, Optional

import torch
import torch.distributed as dist

#: reduce operations by the names the wrappers use (average = sum, then divide by the size)
REDUCE_OPS = {"average": dist.ReduceOp.SUM, "sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN,
              "max": dist.ReduceOp.MAX}


class Handle:
    """An operation in flight: ``wait`` finishes it and returns its result."""

    def __init__(self, result: torch.Tensor, work=None, finish: Optional[Callable[[torch.Tensor], torch.Tensor]] = None):
        self._result, self._work, self._finish = result, work, finish

    def wait(self) -> torch.Tensor:
        if self._work is not None:
            self._work.wait()
            self._work = None
            if self._finish is not None:
                self._result = self._finish(self._result)
        return self._result


def _check_initialized() -> None:
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("hvd_qsparse backend='torch' needs an initialised torch.distributed process group: "
                           "launch with torchrun and call torch.distributed.init_process_group('gloo') "
                           "(or 'nccl' for CUDA tensors) first")


class RankSet:
    """Some global ranks as one torch.distributed group, known on every process (members or not),
    as Horovod's ``hvd.ProcessSet([...])`` is; ``dist.new_group`` runs here, so every rank must
    make it, in the same order.

    Raises:
        ValueError: ranks outside the world, or none.
    """

    def __init__(self, ranks):
        _check_initialized()
        self.ranks = sorted({int(r) for r in ranks})
        world = dist.get_world_size()
        if not self.ranks or self.ranks[0] < 0 or self.ranks[-1] >= world:
            raise ValueError(f"process_set ranks must be some of 0 .. {world - 1}, got {list(ranks)!r}")
        self.group = dist.new_group(self.ranks)

    def __repr__(self) -> str:
        return f"RankSet({self.ranks})"


class TorchCommunicator:
    """torch.distributed's collectives over one process group (the default group by default).

    Args:
        group: None for every rank, a ``RankSet`` (or a list of global ranks, made into one), or a
            ``torch.distributed`` process group this process belongs to.

    Raises:
        RuntimeError: ``torch.distributed`` is not initialised (say how to do it).
        ValueError: a process group this process is not in (its size is unknown here: pass the
            ranks instead).
    """

    def __init__(self, group=None):
        _check_initialized()
        if isinstance(group, (list, tuple)):
            group = RankSet(group)
        self.ranks = group.ranks if isinstance(group, RankSet) else None
        self.group = group.group if isinstance(group, RankSet) else group
        if self.ranks is None and self.group is not None and dist.get_rank(self.group) < 0:
            raise ValueError("process_set: this rank is not in the torch process group given, whose size it cannot "
                             "know; pass the ranks instead (process_set=[0, 2] or backend.RankSet([0, 2]))")

    # --- who -----------------------------------------------------------------------------
    @property
    def rank(self) -> int:
        """This process's rank within the group (-1 outside it)."""
        return dist.get_rank(self.group)

    @property
    def size(self) -> int:
        return len(self.ranks) if self.ranks is not None else dist.get_world_size(self.group)

    @property
    def included(self) -> bool:
        return self.rank >= 0

    @staticmethod
    def mpi_enabled() -> bool:
        """False: no MPI under torch.distributed (``qsparse-async`` needs it)."""
        return False

    @property
    def is_global(self) -> bool:
        if self.ranks is not None:
            return len(self.ranks) == dist.get_world_size()
        return self.group is None or self.group is dist.group.WORLD

    def _global_rank(self, rank: int) -> int:
        if self.ranks is not None:
            return self.ranks[rank]
        return rank if self.group is None else dist.get_global_rank(self.group, rank)

    # --- collectives ---------------------------------------------------------------------
    def allreduce_async(self, tensor: torch.Tensor, name: str, op: str = "sum", prescale: float = 1.0,
                        postscale: float = 1.0) -> Handle:
        out = tensor.detach().clone()
        if prescale != 1.0:
            out.mul_(prescale)
        scale = postscale / self.size if op == "average" else postscale
        work = dist.all_reduce(out, op=REDUCE_OPS[op], group=self.group, async_op=True)
        return Handle(out, work, (lambda t: t.mul_(scale)) if scale != 1.0 else None)

    def allreduce(self, tensor: torch.Tensor, name: str, op: str = "sum") -> torch.Tensor:
        return self.allreduce_async(tensor, name, op).wait()

    def allgather_async(self, tensor: torch.Tensor, name: str) -> Handle:
        return Handle(self.allgather(tensor, name))

    def allgather(self, tensor: torch.Tensor, name: str) -> torch.Tensor:
        """Every rank's ``tensor`` concatenated along dim 0 in rank order (sizes may differ)."""
        tensor = tensor.detach().contiguous()
        length = torch.tensor([tensor.shape[0] if tensor.dim() else 1], dtype=torch.int64, device=tensor.device)
        lengths = [torch.empty_like(length) for _ in range(self.size)]
        dist.all_gather(lengths, length, group=self.group)
        sizes = [int(n) for n in torch.cat(lengths).tolist()]
        flat = tensor.reshape(sizes[self.rank], -1) if tensor.dim() else tensor.reshape(1, 1)
        padded = flat.new_zeros((max(sizes), flat.shape[1]))
        padded[: flat.shape[0]] = flat
        gathered = [torch.empty_like(padded) for _ in range(self.size)]
        dist.all_gather(gathered, padded, group=self.group)
        trailing = tensor.shape[1:] if tensor.dim() else ()
        return torch.cat([g[:n] for g, n in zip(gathered, sizes)]).reshape(sum(sizes), *trailing)

    def alltoall(self, tensor: torch.Tensor, splits: torch.Tensor, name: str):
        """Rows ``splits[j]`` of ``tensor`` to rank j; returns (what arrived, rows from each rank)."""
        splits = splits.to(torch.int64).reshape(-1)
        received = torch.empty_like(splits)
        dist.all_to_all_single(received, splits, group=self.group)
        send, recv = splits.tolist(), received.tolist()
        out = tensor.new_empty((sum(recv), *tensor.shape[1:]))
        dist.all_to_all_single(out, tensor.detach().contiguous(), output_split_sizes=recv, input_split_sizes=send,
                               group=self.group)
        return out, received.to(torch.int32)

    def broadcast(self, tensor: torch.Tensor, root_rank: int, name: str) -> torch.Tensor:
        out = tensor.detach().clone()
        dist.broadcast(out, src=self._global_rank(root_rank), group=self.group)
        return out

    def broadcast_object(self, obj, root_rank: int, name: str):
        holder = [obj]
        dist.broadcast_object_list(holder, src=self._global_rank(root_rank), group=self.group)
        return holder[0]

    def allgather_object(self, obj, name: str) -> list:
        gathered = [None] * self.size
        dist.all_gather_object(gathered, obj, group=self.group)
        return gathered

    @staticmethod
    def synchronize(handle: Handle) -> torch.Tensor:
        return handle.wait()

    def __repr__(self) -> str:
        return f"TorchCommunicator(rank={self.rank}, size={self.size}, backend={dist.get_backend(self.group)})"
