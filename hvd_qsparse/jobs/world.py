"""The job's ranks: Horovod's world under ``horovodrun``/``mpirun``/Slurm, or torch.distributed's
under ``torchrun``, with the handful of calls the job makes of it (``rank``, ``size``,
``local_rank``, ``local_size``, ``allgather_object``, ``shutdown``); the ``horovod.torch``
module itself is the first, ``TorchWorld`` the second.

``--backend auto`` takes torch.distributed when torchrun started this process (it sets
``TORCHELASTIC_RUN_ID``) and Horovod otherwise, so ``torchrun --nproc_per_node 2 -m
hvd_qsparse.jobs.train`` no longer runs two single-rank jobs side by side.
"""
import os

BACKENDS = ("auto", "horovod", "torch")


def launched_by_torchrun() -> bool:
    """True when torchrun (torch.distributed.run) started this process."""
    return "TORCHELASTIC_RUN_ID" in os.environ


def world_backend(flag: str) -> str:
    """``horovod`` or ``torch`` for ``--backend``."""
    if flag != "auto":
        return flag
    return "torch" if launched_by_torchrun() else "horovod"


class TorchWorld:
    """torch.distributed's default group as the job sees it (``init`` joins it)."""

    def __init__(self):
        import torch.distributed as dist
        self._dist = dist

    def init(self, cuda: bool = False) -> None:
        """Join the group that torchrun's environment describes: NCCL for CUDA, else Gloo."""
        if "RANK" not in os.environ:
            raise RuntimeError("--backend torch needs torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR): "
                               "launch with torchrun --nproc_per_node N -m hvd_qsparse.jobs.train ...")
        if not self._dist.is_initialized():
            self._dist.init_process_group("nccl" if cuda else "gloo")

    def rank(self) -> int:
        return self._dist.get_rank()

    def size(self) -> int:
        return self._dist.get_world_size()

    def local_rank(self) -> int:
        return int(os.environ.get("LOCAL_RANK", self.rank()))

    def local_size(self) -> int:
        return int(os.environ.get("LOCAL_WORLD_SIZE", self.size()))

    def allgather_object(self, obj, name=None) -> list:
        gathered = [None] * self.size()
        self._dist.all_gather_object(gathered, obj)
        return gathered

    def shutdown(self) -> None:
        if self._dist.is_initialized():
            self._dist.destroy_process_group()


def join_world(flag: str, cuda: bool = False):
    """The initialised world for ``--backend flag``."""
    if world_backend(flag) == "torch":
        world = TorchWorld()
        world.init(cuda)
        return world
    import horovod.torch as hvd
    hvd.init()
    return hvd
