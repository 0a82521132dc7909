"""The one step pipeline every algorithm runs: compress → exchange → apply.

An algorithm states its policy (when to talk, which values, with which compressor, memory and
exchange, and how to apply the sums); the plumbing is here, once:

- ``compress``: every tensor through its error-feedback memory (or plainly, for dense warm-up
  steps), with the per-(step, tensor) seed ``derive_seed(seed, step, name)`` and this rank's
  rounding-noise stream; a non-finite tensor is marked in the step's ``LocalReport`` (and stands
  in zeros for a lossy compressor), so the collective still matches on every rank and every
  rank learns of it from the flag riding along. Timed as ``compress``.
- ``start``: the messages go into the exchange, with the report's flag riding in its buffers
  (timed as ``communicate``, since some exchanges block there).
- ``finish``: wait (timed as ``communicate``), then record the bits this rank sent and received
  as the exchange measured them on its buffers, the analytic figure, the dense baseline and
  the flag's bytes in the algorithm's ``comm.BitCounter``.
"""
import contextlib
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch

from hvd_qsparse.comm import Exchange, Message, Pending
from hvd_qsparse.compression import Compressor
from hvd_qsparse.compression.base import all_finite
from hvd_qsparse.error_feedback import ErrorFeedback
from hvd_qsparse.ops import Selection, derive_seed
from hvd_qsparse.optim.agreement import LocalReport
from hvd_qsparse.optim.fusion import Fusion, Group
from hvd_qsparse.optim.timing import StepTimer

#: a compressor, or ``(name, value) -> Compressor`` when it depends on the tensor (GD-SEC's thresholds)
CompressorFor = Union[Compressor, Callable[[str, torch.Tensor], Compressor]]
#: every tensor compressed alone
UNFUSED = Fusion("tensor")


def region_keys(name: str, regions: int) -> List[str]:
    """The memory and seed keys of a group cut into ``regions``: ``name`` itself when 1, else
    ``name@0`` … ``name@{R-1}``."""
    return [name] if regions == 1 else [f"{name}@{j}" for j in range(regions)]


def region_values(name: str, value: torch.Tensor, regions: int) -> List[Tuple[str, torch.Tensor]]:
    """``[(key, part)]``: ``value`` whole when ``regions`` is 1, else its R contiguous
    near-equal regions, flat (``region_keys``); the first d mod R hold one entry more, so a
    vector of fewer than R entries leaves the last regions empty."""
    if regions == 1:
        return [(name, value)]
    base, extra = divmod(value.numel(), regions)
    parts = value.reshape(-1).split([base + (j < extra) for j in range(regions)])
    return list(zip(region_keys(name, regions), parts))


@dataclass
class Batch:
    """One exchange's worth of compressed tensors on this rank."""

    messages: List[Message] = field(default_factory=list)
    groups: List[Group] = field(default_factory=list)  # the tensors each message stands for
    analytic_bits: int = 0  # docs/algorithms.md's figure for these payloads
    numel: int = 0          # entries, d, for the dense fp32 baseline

    @property
    def selections(self) -> List[Selection]:
        """What each payload stands for (this rank's contribution, never decoded), one per
        message: per fused group, not per tensor, when the batch was fused."""
        return [m.selection for m in self.messages]


@dataclass
class Round:
    """An exchange in flight: its ``Pending`` and the batch that went in."""

    pending: Pending
    batch: Batch
    step: int
    totals: Optional[List[torch.Tensor]] = None  # after ``StepPipeline.run``


class StepPipeline:
    """Compress, exchange and count for one algorithm (its communicator, timer and bits).

    Args:
        comm: the ranks (``HorovodCommunicator``); ``comm.rank`` is the rounding-noise stream.
        timer: the wrapper's ``StepTimer``.
        bits: a callable returning the algorithm state's ``BitCounter`` (the state object may be
            replaced, by ``load_state_dict`` or a new shard plan).
    """

    def __init__(self, comm, timer: StepTimer, bits: Callable):
        self.comm, self.timer, self._bits = comm, timer, bits
        #: a ``TorchFunctionMode`` entered around every compress phase, for diagnostics
        #: (``ops.host_syncs.HostSyncCounter`` counts the host synchronisations there), or None
        self.trace = None

    def compress(self, named_values: Sequence[Tuple[str, torch.Tensor]], compressor: CompressorFor,
                 memory: Optional[ErrorFeedback], *, seed: int, step: int, report: LocalReport,
                 index: Callable[[int, str], int] = lambda i, name: i, fusion: Optional[Fusion] = None,
                 regions: int = 1) -> Batch:
        """Every ``(name, value)`` through ``memory`` (None: no error feedback; the values go as
        they are, NaN included, as Horovod's allreduce carries them), marking ``index(i, name)``
        in ``report`` for a non-finite value either way, so every rank refuses or skips the step.

        With ``fusion``, consecutive tensors go as one flat vector per group (``optim.fusion``):
        one compression, one finiteness check (the one host synchronisation of a group), and
        ``finish`` cuts the sums back into the tensors.

        With ``regions`` = R > 1, each group's vector is cut into R contiguous near-equal
        regions (``comm.shard_sizes``), compressed one by one as messages ``group@j`` (memory
        and seed keyed so), for an exchange that routes region j to rank j and returns one
        flat sum per group (``comm.ShardedServerExchange``).
        """
        batch = Batch()
        groups = (fusion or UNFUSED).groups(named_values)
        with self.timer.phase("compress"), (self.trace or contextlib.nullcontext()):
            for group in groups:
                values = [named_values[i][1] for i in group.positions]
                joined = group.join(values)
                for key, value in region_values(group.name, joined, regions):
                    codec = compressor if isinstance(compressor, Compressor) else compressor(key, value)
                    message, finite = self._compress_one(key, value, codec, memory, derive_seed(seed, step, key))
                    if not finite:  # which tensor: only on this path, so the check costs nothing otherwise
                        bad = next((i for i, v in zip(group.positions, values) if not all_finite(v)),
                                   group.positions[0])
                        report.mark_bad(index(bad, named_values[bad][0]))
                    batch.messages.append(message)
                    batch.analytic_bits += codec.analytic_bits_of(message.selection, value.numel())
                batch.groups.append(group)
                batch.numel += joined.numel()
        return batch

    def _compress_one(self, key: str, value: torch.Tensor, codec: Compressor, memory: Optional[ErrorFeedback],
                      seed: int) -> Tuple[Message, bool]:
        """One vector through ``memory`` (or plainly): its message and whether it was finite."""
        if memory is None:
            payload, ctx, selection = codec.compress_selected(value, seed, self.comm.rank, check_finite=False)
            return Message(payload, ctx, selection, key), all_finite(value)
        payload, ctx, selection, finite = memory.compress_finite(key, value, codec, seed=seed, stream=self.comm.rank)
        return Message(payload, ctx, selection, key), finite

    def start(self, exchange: Exchange, batch: Batch, name: str, step: int, flag: Optional[int] = None) -> Round:
        """Begin the exchange of ``batch`` (``flag`` rides in its buffers). Timed as
        ``communicate``: some exchanges block here (a size allgather, both server passes)."""
        with self.timer.phase("communicate"):
            return Round(exchange.start(batch.messages, name=name, flag=flag), batch, step)

    def finish(self, round_: Round) -> List[torch.Tensor]:
        """Wait for ``round_`` and record its bits; the sums over ranks, one per tensor (a fused
        message's sum cut back into its tensors)."""
        with self.timer.phase("communicate"):
            totals = round_.pending.wait()
        self.record(round_)
        return [piece for group, total in zip(round_.batch.groups, totals) for piece in group.split(total)]

    def record(self, round_: Round) -> None:
        """Record the bits of a finished round in the algorithm's counter."""
        pending, batch = round_.pending, round_.batch
        analytic = batch.analytic_bits if pending.analytic_bits is None else pending.analytic_bits
        bits = self._bits()
        bits.record(round_.step, 8 * pending.sent_bytes, analytic, 32 * batch.numel,
                    received=8 * pending.received_bytes)
        bits.record_control(round_.step, 8 * pending.control_bytes)

    def run(self, exchange: Exchange, batch: Batch, name: str, step: int, flag: Optional[int] = None) -> Round:
        """``start`` then wait; the finished round (its ``pending`` holds flags and results, its
        ``totals`` the sums, one per tensor)."""
        round_ = self.start(exchange, batch, name, step, flag)
        round_.totals = self.finish(round_)
        return round_
