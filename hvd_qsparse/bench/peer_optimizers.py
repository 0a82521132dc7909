"""The peers' data-parallel optimizers, each counting the bits it hands to its collectives.

The benchmark runs Horovod's own ``hvd.DistributedOptimizer`` and PyTorch's
``DistributedDataParallel`` (plain, with the fp16/bf16 compression hooks, with the PowerSGD
communication hook, and with ``PostLocalSGDOptimizer``) unchanged; these classes only wrap them by composition and expose
what the training job's recorder and summary read from our optimizers: ``bits`` (a
``comm.BitCounter``), ``step_count``, ``timer``, ``flat_numel()`` and
``load_synchronized_model()``, ``close()``, plus ``module`` (what the forward pass goes through).

A peer's bits for a step are the bytes of the buffers it hands to a collective, times 8, the
convention of ``comm.accounting``:

- Horovod: the tensors its ``Compression`` returns, which ``allreduce_async_`` receives
  (32 bits per entry with ``Compression.none``, 16 with ``Compression.fp16``).
- DDP: the gradient bucket its communication hook allreduces (``bucket.buffer()``; 16 bits per
  entry with the fp16/bf16 compression hooks). DDP's broadcast of buffers (BatchNorm's
  statistics) before each forward is not counted.
- PowerSGD: the bucket during its warm-up; then the three buffers the hook allreduces (the
  uncompressed tensors, P and Q), whose element counts the hook adds to
  ``PowerSGDState.total_numel_after_compression`` at every call.
- PostLocalSGD: the buckets during its warm-up; then the flat parameter buffer that
  ``PeriodicModelAverager`` allreduces every ``period`` steps (gradients stay local).

Every peer's collective is an allreduce, so what it receives is counted as a ring moves it,
2(R − 1)/R of what it sent.

Timing: ``communicate`` is the communication that backward did not hide: Horovod's
``synchronize()`` wait, and for DDP the seconds from the last bucket's hook call (backward is
done) to the completion of the last bucket's future (PowerSGD's matrix products included: they
run inside that chain), plus PostLocalSGD's model averages; ``compress`` is Horovod's fp16 cast.
"""
import os
import threading
import time
from abc import ABC, abstractmethod

import torch
import torch.distributed as dist
from horovod.torch.compression import Compressor
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.distributed.algorithms.ddp_comm_hooks.post_localSGD_hook import (PostLocalSGDState,
                                                                          post_localSGD_hook)
from torch.distributed.algorithms.ddp_comm_hooks.powerSGD_hook import PowerSGDState, powerSGD_hook
from torch.distributed.algorithms.model_averaging.averagers import PeriodicModelAverager
from torch.distributed.algorithms.model_averaging.utils import get_params_to_average
from torch.distributed.optim import PostLocalSGDOptimizer
from torch.nn.parallel import DistributedDataParallel

from hvd_qsparse.comm import BitCounter, ring_share
from hvd_qsparse.optim.timing import StepTimer


class PeerTimer(StepTimer):
    """A ``StepTimer`` that also takes seconds measured elsewhere (DDP's exposed communication)."""

    def add(self, name: str, seconds: float) -> None:
        self._seconds[name] = self._seconds.get(name, 0.0) + seconds


class PeerOptimizer(ABC):
    """A peer's optimizer plus the counters our optimizers have.

    Args:
        module: what the forward pass goes through (the model, or DDP around it).
        model: the bare model (its parameters are the ones trained).
    """

    def __init__(self, module: torch.nn.Module, model: torch.nn.Module):
        self.module = module
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.bits = BitCounter()
        self.timer = PeerTimer()
        self._step = 0
        self.optimizer = None

    @property
    def step_count(self) -> int:
        return self._step

    def flat_numel(self) -> int:
        """Number of trained entries, d."""
        return sum(p.numel() for p in self.params)

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()

    def step(self) -> None:
        self._optimizer_step()
        self._step += 1

    @abstractmethod
    def _optimizer_step(self) -> None:
        """The peer's own step (its communication included where it happens there)."""

    def load_synchronized_model(self) -> None:
        """A no-op: the replicas of a synchronous peer agree after every step."""

    def close(self) -> None:
        """Release what the peer started itself (a no-op here; torchft's DiLoCo stops its servers)."""

    def record(self, sent_bits: int, dense_numel: int) -> None:
        """Add ``sent_bits`` handed to an allreduce at the current step (the exact figure is
        also the analytic one: a peer's buffer sizes follow from the tensor shapes), and what
        reaches this rank as a ring moves it (``comm.accounting``)."""
        self.bits.record(self._step, sent_bits, sent_bits, 32 * dense_numel,
                         received=ring_share(sent_bits, world_size()))


def world_size() -> int:
    """The peers' ranks: torch.distributed's world, else Horovod's, else mpirun's (torchft's
    replica groups, one per mpirun rank, initialise neither)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    try:
        import horovod.torch as hvd
        return hvd.size()
    except ValueError:  # Horovod not initialised in this process
        return int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1"))


class CountingCompression(Compressor):
    """Horovod's compression ``inner``, recording the size of every tensor it hands to allreduce."""

    def __init__(self, inner, peer: PeerOptimizer):
        self.inner, self.peer = inner, peer

    def compress(self, tensor):
        with self.peer.timer.phase("compress"):
            out, ctx = self.inner.compress(tensor)
        self.peer.record(8 * out.numel() * out.element_size(), tensor.numel())
        return out, ctx

    def decompress(self, tensor, ctx):
        return self.inner.decompress(tensor, ctx)


class HorovodPeer(PeerOptimizer):
    """``hvd.DistributedOptimizer`` with Horovod's ``compression`` (``Compression.none`` or ``.fp16``)."""

    def __init__(self, model, optimizer, compression):
        import horovod.torch as hvd
        super().__init__(model, model)
        self.optimizer = hvd.DistributedOptimizer(optimizer, named_parameters=model.named_parameters(),
                                                  compression=CountingCompression(compression, self))
        hvd.broadcast_parameters(model.state_dict(), root_rank=0)
        hvd.broadcast_optimizer_state(self.optimizer, root_rank=0)

    def _optimizer_step(self) -> None:
        with self.timer.phase("communicate"):
            self.optimizer.synchronize()
        with self.optimizer.skip_synchronize():
            self.optimizer.step()


class DDPPeer(PeerOptimizer):
    """``DistributedDataParallel`` over the default process group with its default allreduce hook."""

    #: bits per entry of what the hook hands to the collective (None: the bucket's dtype)
    wire_element_bits = None

    def __init__(self, model, optimizer, **ddp_options):
        super().__init__(DistributedDataParallel(model, **ddp_options), model)
        self.optimizer = optimizer
        self.hook_state = self.make_hook_state()
        self.module.register_comm_hook(self.hook_state, self._hook)
        # When this step's last bucket was handed over and when the last one came back; the
        # callbacks run on Gloo's worker threads, hence the lock.
        self._last_call, self._last_done, self._done_lock = None, 0.0, threading.Lock()

    def make_hook_state(self):
        """The state handed to the hook (for DDP's allreduce hook: the process group, None = world)."""
        return None

    def communicate(self, state, bucket) -> tuple:
        """Start the bucket's communication: ``(future, entries handed to collectives)``."""
        return default_hooks.allreduce_hook(state, bucket), bucket.buffer().numel()

    def _hook(self, state, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
        self._last_call = time.perf_counter()
        buffer = bucket.buffer()
        dense_numel, element_bits = buffer.numel(), self.wire_element_bits or 8 * buffer.element_size()
        fut, sent_numel = self.communicate(state, bucket)
        if sent_numel:
            self.record(element_bits * sent_numel, dense_numel)
        return fut.then(self._finished)

    def _finished(self, fut):
        with self._done_lock:
            self._last_done = max(self._last_done, time.perf_counter())
        return fut.value()

    def _optimizer_step(self) -> None:
        # The communication backward did not hide: from the last bucket's hand-over (backward
        # is done) to the last completion, as Horovod's synchronize() wait.
        if self._last_call is not None:
            self.timer.add("communicate", max(0.0, self._last_done - self._last_call))
            self._last_call = None
        self.optimizer.step()


class HalfPrecisionDDPPeer(DDPPeer):
    """DDP with PyTorch's 16-bit compression hook: each bucket is cast to fp16 or bf16, averaged
    by one allreduce and cast back (``default_hooks.fp16_compress_hook`` / ``bf16_compress_hook``),
    the 16-bit dense baseline.

    Args:
        dtype: ``"fp16"`` or ``"bf16"``.
    """

    wire_element_bits = 16
    HOOKS = {"fp16": default_hooks.fp16_compress_hook, "bf16": default_hooks.bf16_compress_hook}

    def __init__(self, model, optimizer, dtype: str):
        self.hook = self.HOOKS[dtype]
        super().__init__(model, optimizer)

    def communicate(self, state, bucket) -> tuple:
        return self.hook(state, bucket), bucket.buffer().numel()


class PowerSGDPeer(DDPPeer):
    """DDP with PyTorch's PowerSGD hook (Vogels et al., NeurIPS 2019): error feedback, warm start.

    One bucket holds the whole gradient: the hook starts its P and Q allreduces from futures'
    callbacks, and with Gloo those of two buckets interleave in a different order on different
    ranks (gloo: "Received data size doesn't match expected size" at 4.9M parameters).

    Args:
        rank: ``matrix_approximation_rank``.
        start_iter: plain allreduce before this step (PyTorch needs > 1 with error feedback).
        seed: seed of the hook's random initial Q.
    """

    def __init__(self, model, optimizer, rank: int, start_iter: int, seed: int):
        self.rank, self.start_iter, self.seed = rank, start_iter, seed
        model_mib = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
        super().__init__(model, optimizer, bucket_cap_mb=model_mib + 1)

    def make_hook_state(self):
        return PowerSGDState(process_group=None, matrix_approximation_rank=self.rank,
                             start_powerSGD_iter=self.start_iter, random_seed=self.seed)

    def communicate(self, state, bucket) -> tuple:
        if state.iter < state.start_powerSGD_iter:
            return powerSGD_hook(state, bucket), bucket.buffer().numel()
        before = state.total_numel_after_compression
        fut = powerSGD_hook(state, bucket)
        return fut, state.total_numel_after_compression - before


class CountingAverager(PeriodicModelAverager):
    """``PeriodicModelAverager`` that records the flat buffer it allreduces and keeps the
    averaged model (the one all replicas agree on)."""

    def __init__(self, period: int, warmup_steps: int, peer: PeerOptimizer):
        super().__init__(period=period, warmup_steps=warmup_steps)
        self.peer = peer
        self.averaged = None

    def average_parameters(self, params) -> None:
        due = self.step >= self.warmup_steps and (self.step - self.warmup_steps) % self.period == 0
        if not due:
            super().average_parameters(params)
            return
        params = list(params)
        with self.peer.timer.phase("communicate"):
            super().average_parameters(params)
        averaged = get_params_to_average(params)
        self.peer.record(sum(8 * p.numel() * p.element_size() for p in averaged), sum(p.numel() for p in averaged))
        self.averaged = [p.detach().clone() for p in self.peer.params]


class PostLocalSGDPeer(DDPPeer):
    """DDP with ``post_localSGD_hook`` and ``PostLocalSGDOptimizer`` (local SGD, Lin et al., ICLR 2020).

    After ``warmup`` steps of DDP's gradient allreduce, gradients stay local
    (``post_local_gradient_allreduce=False``: on one machine the default intra-node subgroup
    would be every rank) and the models are averaged every ``period`` steps.
    """

    def __init__(self, model, optimizer, period: int, warmup: int):
        self.warmup = warmup
        super().__init__(model, optimizer)
        self.averager = CountingAverager(period, warmup, self)
        self.optimizer = PostLocalSGDOptimizer(optim=optimizer, averager=self.averager)

    def make_hook_state(self):
        return PostLocalSGDState(process_group=None, subgroup=None, start_localSGD_iter=self.warmup,
                                 post_local_gradient_allreduce=False)

    def communicate(self, state, bucket) -> tuple:
        warm = state.iter < state.start_localSGD_iter
        return post_localSGD_hook(state, bucket), bucket.buffer().numel() if warm else 0

    @torch.no_grad()
    def load_synchronized_model(self) -> None:
        """The last averaged model into the parameters (replicas drift between averages)."""
        if self.averager.averaged is not None:
            for p, avg in zip(self.params, self.averager.averaged):
                p.copy_(avg)
