"""torchft's own DiLoCo (``torchft.local_sgd.DiLoCo``, torchft 0.2.0) as a benchmark peer.

Every mpirun rank is a replica group of one (``replica_id = rank``, group world size 1) with its
own ``TCPStore``; rank 0 hosts the lighthouse at ``MASTER_ADDR:MASTER_PORT`` with
``min_replicas`` = the number of ranks, so every quorum holds all ranks and no replica steps
alone. The stores, the managers' servers and the lighthouse are advertised at ``MASTER_ADDR``
and Gloo follows ``GLOO_SOCKET_IFNAME``, as for the DDP peers, so a shaped loopback carries
all of it.

DiLoCo (Douillard et al., 2023) runs ``sync_every`` inner steps, allreduces the pseudo-gradient
(the last synchronized model minus the local one, fp32, one tensor per parameter) and applies it
with the outer optimizer: SGD with Nesterov momentum over the model's parameters, learning rate
and momentum from ``--outer-lr`` and ``--outer-momentum`` (0.7 and 0.9, torchft's examples).

Bits: the bytes of every tensor DiLoCo hands to ``Manager.allreduce`` (``CountingManager``),
times 8, at the step that syncs: 32 bits per parameter per outer step. The lighthouse's and
managers' quorum and heartbeat messages are not counted.
"""
import os
import time
from datetime import timedelta

import torch
from mpi4py import MPI
from torch.distributed import TCPStore
from torchft import Manager, ProcessGroupGloo
from torchft._torchft import LighthouseServer
from torchft.local_sgd import DiLoCo

from hvd_qsparse.bench.peer_optimizers import PeerOptimizer


class CountingManager(Manager):
    """torchft's ``Manager``, recording the size of every tensor handed to its allreduce.

    Args:
        peer: the peer whose ``record`` receives the bits.
        **kwargs: ``Manager``'s arguments.
    """

    def __init__(self, peer: PeerOptimizer, **kwargs):
        self.peer = peer
        super().__init__(**kwargs)

    def allreduce(self, tensor: torch.Tensor, *args, **kwargs):
        # Recorded before delegating: what the buffer holds is what goes on the wire (fp32,
        # should_quantize stays off on CPU).
        self.peer.record(8 * tensor.numel() * tensor.element_size(), tensor.numel())
        return super().allreduce(tensor, *args, **kwargs)


class TorchFTDiLoCoPeer(PeerOptimizer):
    """The inner optimizer wrapped by torchft's DiLoCo; one replica group per mpirun rank.

    Args:
        model: the model (one DiLoCo fragment: all of it syncs at once).
        optimizer: the inner optimizer (its ``step`` triggers DiLoCo's hooks).
        sync_every: inner steps between outer steps (``--local-steps``).
        outer_lr: the outer SGD's learning rate.
        outer_momentum: the outer SGD's Nesterov momentum.
        timeout_s: torchft's collective, commit and quorum timeouts; the quorum waits for the
            slowest rank's ``sync_every`` inner steps, so it is generous.

    Raises:
        KeyError: not started by mpirun, or without ``MASTER_ADDR``/``MASTER_PORT``.
    """

    def __init__(self, model, optimizer, sync_every: int, outer_lr: float = 0.7, outer_momentum: float = 0.9,
                 timeout_s: float = 300.0):
        super().__init__(model, model)
        self.optimizer = optimizer
        self.sync_every = sync_every
        self.world = MPI.COMM_WORLD
        rank, size = int(os.environ["OMPI_COMM_WORLD_RANK"]), int(os.environ["OMPI_COMM_WORLD_SIZE"])
        addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
        timeout = timedelta(seconds=timeout_s)
        # One lighthouse for the run: with one per rank each would form its own quorum.
        self.lighthouse = LighthouseServer(bind=f"{addr}:{port}", min_replicas=size) if rank == 0 else None
        self.world.Barrier()  # it listens before any manager registers
        self.store = TCPStore(addr, 0, is_master=True, wait_for_workers=False)  # port 0: a free one
        # init_sync=False: every rank builds the same model from the same seed, so step 0 needs no
        # checkpoint transfer (which would bypass the allreduce and the bit count).
        self.manager = CountingManager(
            self, pg=ProcessGroupGloo(timeout=timeout), load_state_dict=self._load_state, state_dict=self._state,
            min_replica_size=size, use_async_quorum=False, init_sync=False, rank=0, world_size=1,
            store_addr=addr, store_port=self.store.port, lighthouse_addr=f"http://{addr}:{port}",
            replica_id=f"rank{rank}", port=0, hostname=addr, timeout=timeout, quorum_timeout=timeout,
            connect_timeout=timeout)
        self.model = model
        # Registered before DiLoCo's hooks, so it runs first: the end of the inner update, from
        # which a syncing step's remaining time is DiLoCo's quorum, allreduce and outer step.
        self._inner_done = 0.0
        self._mark = optimizer.register_step_post_hook(self._mark_inner_done)
        outer = torch.optim.SGD(model.parameters(), lr=outer_lr, momentum=outer_momentum, nesterov=True)
        self.diloco = DiLoCo(self.manager, [model], optimizer, outer, sync_every=sync_every,
                             backup_device=torch.device("cpu"), pin_memory=False)
        self.diloco.__enter__()
        self._closed = False

    def _state(self) -> dict:
        return {"model": self.model.state_dict(), "inner": self.optimizer.state_dict()}

    def _load_state(self, state: dict) -> None:
        # Only a healing replica loads (none does without faults); kept so a heal is complete.
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["inner"])

    def _mark_inner_done(self, *_) -> None:
        self._inner_done = time.perf_counter()

    def _optimizer_step(self) -> None:
        self.optimizer.step()
        # DiLoCo's local step count restarts after every sync attempt, so syncs fall on fixed steps.
        if (self._step + 1) % self.sync_every == 0:
            self.timer.add("communicate", time.perf_counter() - self._inner_done)

    @torch.no_grad()
    def load_synchronized_model(self) -> None:
        """The last outer step's model into the parameters (replicas drift between syncs).

        DiLoCo keeps that model as its backup copy; ``_restore_parameters`` (torchft 0.2.0,
        pinned in ``launch/setup.sh``) copies it back.
        """
        self.diloco._restore_parameters()

    def close(self) -> None:
        """Leave DiLoCo, stop the manager, then (once every rank has) the lighthouse."""
        if self._closed:
            return
        self._closed = True
        self.diloco.__exit__(None, None, None)
        self._mark.remove()
        self.manager.shutdown(wait=True)
        self.world.Barrier()  # no manager talks to the lighthouse any more
        if self.lighthouse is not None:
            self.lighthouse.shutdown()
