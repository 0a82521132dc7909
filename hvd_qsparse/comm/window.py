"""An fp32 vector (plus int64 counters) in one rank's memory, reached by MPI one-sided calls.

The window is created with ``MPI.Win.Allocate`` on a duplicate of the world communicator (so
its traffic never mixes with Horovod's or the user's), only the host rank contributes memory,
and every access happens inside a passive-target epoch opened by ``lock()``:

    with window.lock():
        sent = window.accumulate(values, indices)   # x[indices] += values, atomic per entry
        received = window.fetch(out)                 # out = x, after this rank's accumulate

Accumulates are element-wise atomic, so a shared lock lets every rank push at once without
losing an update; the fetch is a ``Get_accumulate(op=NO_OP)`` rather than a ``Get``, because
MPI orders accumulate operations from one origin (the fetch sees this rank's own push) and
defines a concurrent read only between accumulate operations. Sparse pushes travel through
an indexed datatype (``Create_indexed_block``), so only the touched entries move; a dense push
is one contiguous accumulate. Results in ``out`` are valid once the ``with`` block has ended.

MPI reads and writes CPU tensors in place (no copy). A tensor on a GPU goes through the
window's one host staging buffer: copied to it before a put or accumulate, from it after a
fetch, each copy finished (the CUDA stream synchronized) before MPI or the caller touches the
buffer, and each staged operation flushed before the call returns, so the buffer is free again
for the next call. The buffer is allocated at the first staged call, pinned when CUDA is
available (page-locked memory, so the copies go straight to and from the device).

mpi4py is imported when a window is created, not when this module is, so importing
``hvd_qsparse`` never initializes MPI.
"""
import atexit
import os
import sys
import weakref
from contextlib import contextmanager
from typing import Optional

import numpy as np
import torch

from hvd_qsparse.comm.layout import FlatLayout

FLOAT_BYTES, COUNTER_BYTES = 4, 8
_NUMPY = {torch.float32: np.float32, torch.int32: np.int32}


class OneSidedUnavailableError(RuntimeError):
    """MPI cannot create the window (no one-sided support, or none usable with threads)."""


def load_mpi():
    """``mpi4py.MPI``, or an error that says how to get it."""
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise OneSidedUnavailableError("one-sided windows need mpi4py (pip install mpi4py, built against "
                                       f"the MPI that Horovod uses): {err}") from err
    return MPI


#: windows not freed yet (for the exit guard), and whether the guard is registered
_LIVE = weakref.WeakSet()
_GUARD = {"registered": False}


def _leave_without_finalize_after_a_failure() -> None:
    """At interpreter exit after an uncaught exception, a rank whose window is still allocated
    leaves at once, exit code 1, without ``MPI_Finalize``: finalizing tears down the shared
    memory the other ranks' one-sided calls still use, and they would die of a segmentation
    fault. The launcher then sees this rank fail and ends the job cleanly."""
    if getattr(sys, "last_value", None) is not None and any(not w.freed for w in list(_LIVE)):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


class Window:
    """``layout.numel`` fp32 entries and ``counters`` int64 counters, hosted on ``host_rank``.

    Creating and freeing are collective over ``comm``; everything else is one-sided.

    Args:
        layout: the flat buffer's table; every rank must pass the same one.
        host_rank: the rank whose memory holds the window.
        counters: number of int64 counters after the vector.
        comm: the communicator to duplicate (default ``MPI.COMM_WORLD``).

    Raises:
        ValueError: ``host_rank`` out of range, or the ranks' layouts differ (raised on every
            rank, naming the first differing parameter, before any memory is allocated).
        OneSidedUnavailableError: MPI could not allocate the window on some rank.
    """

    def __init__(self, layout: FlatLayout, host_rank: int = 0, counters: int = 0, comm=None):
        MPI = self.MPI = load_mpi()
        self.comm = (comm if comm is not None else MPI.COMM_WORLD).Dup()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.layout, self.host, self.counters, self.win = layout, host_rank, counters, None
        self._inflight = []  # buffers and datatypes MPI may still read until the epoch ends
        self._staging: Optional[torch.Tensor] = None  # host copies of device tensors (``_origin``, ``fetch``)
        try:
            self._check_arguments()
            # Counters start on an 8-byte boundary: the vector is padded to an even length.
            self.counter_disp = layout.numel + layout.numel % 2
            nbytes = FLOAT_BYTES * self.counter_disp + COUNTER_BYTES * counters
            self.win = self._allocate(nbytes if self.rank == host_rank else 0)
        except BaseException:
            self.free()
            raise
        if not _GUARD["registered"]:  # after mpi4py's own exit hook, so it runs before MPI finalizes
            atexit.register(_leave_without_finalize_after_a_failure)
            _GUARD["registered"] = True
        _LIVE.add(self)

    def _check_arguments(self) -> None:
        """Same verdict on every rank (the checks use only what all ranks share), so no rank is
        left waiting in ``Allocate`` while another raises."""
        if isinstance(self.host, bool) or not isinstance(self.host, int) or not 0 <= self.host < self.size:
            raise ValueError(f"host_rank must be an integer in [0, {self.size - 1}] (the rank holding the "
                             f"window), got {self.host!r}")
        if isinstance(self.counters, bool) or not isinstance(self.counters, int) or self.counters < 0:
            raise ValueError(f"counters must be an integer >= 0, got {self.counters!r}")
        signatures = self.comm.allgather(self.layout.signature())
        reference = FlatLayout(signatures[0])
        for rank in range(1, self.size):
            reference.check_matches(signatures[rank], here="rank 0's model", there=f"rank {rank}'s model")

    def _allocate(self, nbytes: int):
        MPI, error = self.MPI, None
        try:
            win = MPI.Win.Allocate(nbytes, disp_unit=FLOAT_BYTES, comm=self.comm)
        except MPI.Exception as err:
            win, error = None, err
        # Agree, so that a rank that failed never leaves the others waiting in a later collective.
        failed = self.comm.allgather(None if error is None else error.Get_error_string())
        bad = [(r, e) for r, e in enumerate(failed) if e is not None]
        if bad:
            # A window made on some ranks only is left to MPI_Finalize: freeing it is collective
            # over ranks that have none, and would hang.
            raise OneSidedUnavailableError(
                f"MPI_Win_allocate failed on rank {bad[0][0]} ({bad[0][1]}): this MPI offers no usable "
                "one-sided communication beside Horovod (which needs MPI_THREAD_MULTIPLE). Use "
                "--algorithm qsparse instead, or pick a one-sided component that supports threads "
                "(Open MPI: --mca osc sm on one node, rdma or ucx across nodes; osc pt2pt refuses threads)")
        win.Set_errhandler(MPI.ERRORS_RETURN)
        return win

    # --- epochs -----------------------------------------------------------------------------
    @contextmanager
    def lock(self, exclusive: bool = False):
        """A passive-target epoch on the host: shared (concurrent accumulates) or exclusive."""
        kind = self.MPI.LOCK_EXCLUSIVE if exclusive else self.MPI.LOCK_SHARED
        self.win.Lock(self.host, kind)
        try:
            yield self
        finally:
            self.win.Unlock(self.host)
            for item in self._inflight:
                if isinstance(item, self.MPI.Datatype):
                    item.Free()
            self._inflight = []

    # --- one-sided operations (inside ``lock()``) ------------------------------------------
    def accumulate(self, values: torch.Tensor, indices: Optional[torch.Tensor] = None) -> int:
        """Add ``values`` to the entries ``indices`` (window offsets, unique), or to the whole
        vector when ``indices`` is None. Returns the bytes handed to MPI: the values, plus the
        datatype's displacement table (int32 per entry) for a sparse push."""
        MPI, tensors = self.MPI, (values, indices)
        values = self._hold(self._origin(values, torch.float32, part=0))
        if indices is None:
            if values.size != self.layout.numel:
                raise ValueError(f"dense accumulate needs {self.layout.numel} values, got {values.size}")
            self.win.Accumulate([values, MPI.FLOAT], self.host, target=(0, values.size, MPI.FLOAT), op=MPI.SUM)
            self._release_staging(*tensors)
            return values.nbytes
        displacements = self._hold(self._origin(indices, torch.int32, part=1))
        if displacements.size != values.size:
            raise ValueError(f"accumulate: {displacements.size} indices for {values.size} values")
        if displacements.size == 0:
            return 0
        if displacements.min() < 0 or displacements.max() >= self.layout.numel:
            raise ValueError(f"accumulate: indices must lie in [0, {self.layout.numel - 1}], got "
                             f"[{displacements.min()}, {displacements.max()}]")
        datatype = self._hold(MPI.FLOAT.Create_indexed_block(1, displacements).Commit())
        self.win.Accumulate([values, MPI.FLOAT], self.host, target=(0, 1, datatype), op=MPI.SUM)
        self._release_staging(*tensors)
        return values.nbytes + displacements.nbytes

    def fetch(self, out: torch.Tensor) -> int:
        """Read the whole vector into ``out`` (fp32, contiguous, ``layout.numel`` entries); returns
        the bytes received."""
        MPI = self.MPI
        if out.dtype != torch.float32 or not out.is_contiguous() or out.numel() != self.layout.numel:
            raise ValueError(f"fetch needs a contiguous fp32 buffer of {self.layout.numel} entries, got "
                             f"{out.dtype} with {out.numel()} entries")
        if not self._stages(out):
            return self._get_into(out.detach().numpy().reshape(-1))
        host = self._staging_view(0, out.numel(), torch.float32)
        received = self._get_into(host.numpy())
        self.win.Flush(self.host)  # the result is in the buffer now, not only when the epoch ends
        out.detach().view(-1).copy_(host, non_blocking=True)
        _wait_for(out.device)  # the buffer is free again when this returns
        return received

    def _get_into(self, result: np.ndarray) -> int:
        MPI = self.MPI
        self.win.Get_accumulate([result[:0], 0, MPI.FLOAT], [result, MPI.FLOAT], self.host,
                                target=(0, result.size, MPI.FLOAT), op=MPI.NO_OP)
        return result.nbytes

    def put(self, flat: torch.Tensor) -> None:
        """Overwrite the whole vector (take an exclusive lock: a put is not atomic)."""
        MPI = self.MPI
        source = self._hold(self._origin(flat, torch.float32, part=0))
        self.win.Put([source, MPI.FLOAT], self.host, target=(0, source.size, MPI.FLOAT))
        self._release_staging(flat)

    def add_counter(self, slot: int, value: int) -> np.ndarray:
        """Atomically add ``value`` to counter ``slot``; the returned 1-element array holds the
        previous value once the epoch has ended."""
        MPI = self.MPI
        if not 0 <= slot < self.counters:
            raise ValueError(f"counter slot must be in [0, {self.counters - 1}], got {slot}")
        origin, result = self._hold(np.array([value], dtype=np.int64)), np.zeros(1, dtype=np.int64)
        self.win.Fetch_and_op([origin, MPI.INT64_T], [result, MPI.INT64_T], self.host,
                              self.counter_disp + 2 * slot, op=MPI.SUM)
        return result

    def set_counters(self, values) -> None:
        """Overwrite every counter (inside an exclusive epoch)."""
        source = self._hold(np.asarray(values, dtype=np.int64).reshape(-1))
        self.win.Put([source, self.MPI.INT64_T], self.host,
                     target=(self.counter_disp, source.size, self.MPI.INT64_T))

    def _hold(self, item):
        self._inflight.append(item)
        return item

    # --- device tensors through the staging buffer ----------------------------------------------
    def _stages(self, tensor) -> bool:
        """True for a tensor MPI cannot reach in place (not in host memory)."""
        return isinstance(tensor, torch.Tensor) and tensor.device.type != "cpu"

    def _staging_view(self, part: int, numel: int, dtype: torch.dtype) -> torch.Tensor:
        """``numel`` entries of ``part`` (0: fp32 values, 1: int32 offsets) of the staging buffer,
        ``layout.numel`` 4-byte words per part, allocated once, at the first call."""
        if numel > self.layout.numel:
            raise ValueError(f"window: a tensor of {numel} entries does not fit the {self.layout.numel} of the "
                             "window")
        if self._staging is None:
            self._staging = torch.empty(2 * self.layout.numel, dtype=torch.int32,
                                        pin_memory=torch.cuda.is_available())
        start = part * self.layout.numel
        return self._staging[start: start + numel].view(dtype)

    def _origin(self, tensor, dtype: torch.dtype, part: int) -> np.ndarray:
        """What MPI reads for ``tensor``: its own memory when it is in host memory (no copy),
        otherwise its copy in ``part`` of the staging buffer, complete before MPI reads it."""
        if not self._stages(tensor):
            return _as_numpy(tensor, _NUMPY[dtype])
        host = self._staging_view(part, tensor.numel(), dtype)
        host.copy_(tensor.detach().reshape(-1), non_blocking=True)
        _wait_for(tensor.device)
        return host.numpy()

    def _release_staging(self, *tensors) -> None:
        """MPI may read an origin buffer until the epoch ends; when one was the staging buffer,
        complete this rank's operations at the origin now, as the next call reuses it."""
        if any(self._stages(t) for t in tensors):
            self.win.Flush_local(self.host)

    # --- collective ---------------------------------------------------------------------------
    def barrier(self) -> None:
        """Wait until every rank of the window's communicator has arrived."""
        self.comm.Barrier()

    def free(self) -> None:
        """Free the window and its communicator (collective); safe to call twice."""
        if self.win is not None:
            self.win.Free()
            self.win = None
        if self.comm is not None:
            self.comm.Free()
            self.comm = None

    @property
    def freed(self) -> bool:
        return self.win is None


def _wait_for(device: torch.device) -> None:
    """Wait until the copies queued on ``device``'s current CUDA stream have run (a CPU copy
    is done when it returns)."""
    if device.type == "cuda":
        torch.cuda.current_stream(device).synchronize()


def _as_numpy(tensor, dtype) -> np.ndarray:
    """A contiguous numpy view (no copy when already right) of a CPU tensor or array."""
    array = tensor.detach().numpy() if isinstance(tensor, torch.Tensor) else tensor
    return np.ascontiguousarray(array, dtype=dtype).reshape(-1)
