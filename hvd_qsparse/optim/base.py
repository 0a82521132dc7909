"""The optimizer wrapper every algorithm builds on: a real ``torch.optim.Optimizer`` by composition.

As PyTorch's ``PostLocalSGDOptimizer``, it holds the user's optimizer and shares its
``param_groups``, ``state`` and ``defaults`` (the same objects), so LR schedulers, GradScaler,
``add_param_group``, ``hvd.broadcast_optimizer_state`` and ``hvd.elastic.TorchState`` work on it
unchanged; ``state_dict()`` is the inner optimizer's plus the algorithm's state under one key.

One ``step`` serves every algorithm; the algorithm states its policy through a few methods:
``_averages_gradients`` (this step exchanges gradients before the local update),
``_exchange_gradients`` (do it, writing the result into ``.grad``) and ``_after_local_step`` (a
model-averaging round after the update, when due). Around them the base handles what Horovod
users rely on: ``synchronize``/``skip_synchronize``, GradScaler (see ``optim.amp``), the agreement
on non-finite values (``optim.agreement``), the same-model check, and ranks outside the process set.
"""
import warnings
from abc import abstractmethod
from contextlib import contextmanager
from typing import Iterable, List, Optional, Tuple

import torch

from hvd_qsparse.optim.agreement import LocalReport, Verdict, agree
from hvd_qsparse.optim.amp import AmpInputs
from hvd_qsparse.optim.buffers import BufferSync
from hvd_qsparse.optim.composition import ComposedOptimizer
from hvd_qsparse.optim.grads import poison_grads_, unscale_grads_
from hvd_qsparse.optim.options import HorovodOptions
from hvd_qsparse.optim.params import resolve_named_parameters
from hvd_qsparse.optim.pipeline import StepPipeline
from hvd_qsparse.optim.setting import describe_setting
from hvd_qsparse.optim.signature import check_same_model
from hvd_qsparse.optim.state_format import STATE_KEY, TorchStateFormat, called_from_broadcast_optimizer_state
from hvd_qsparse.optim.timing import StepTimer


class WrappedOptimizer(TorchStateFormat, ComposedOptimizer):
    """A torch optimizer plus an algorithm's communication policy.

    Args:
        optimizer: the user's optimizer; it takes the local steps.
        named_parameters: ``model.named_parameters()``; names must agree across ranks.
        options: Horovod's keywords (``HorovodOptions``), with the communicator they imply.
    """

    # GradScaler then hands step() the scale and its overflow flag instead of skipping step()
    # on its own, so every rank enters every step and the skip is agreed (``optim.amp``).
    _step_supports_amp_scaling = True

    def __init__(self, optimizer: torch.optim.Optimizer, named_parameters=None,
                 options: Optional[HorovodOptions] = None):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.options = options if options is not None else HorovodOptions()
        self.comm = self.options.communicator()
        self.named_params: List[Tuple[str, torch.Tensor]] = [
            (n, p) for n, p in resolve_named_parameters(optimizer, named_parameters) if p.requires_grad]
        #: seconds per phase (``compress``, ``communicate``) of the current step, for metrics
        self.timer = StepTimer.for_parameters(p for _, p in self.named_params)
        #: compress → exchange → count, shared by every algorithm (``optim.pipeline``)
        self.pipeline = StepPipeline(self.comm, self.timer, lambda: self.bits)
        self.backward_passes_per_step = self.options.backward_passes_per_step
        self._synchronized = False
        self._should_synchronize = True
        self._verdict: Optional[Verdict] = None
        self._model_checked = False
        #: the loss scale the next exchange divides by (GradScaler's, learnt at its steps)
        self.loss_scale = 1.0
        self._serial = 0
        #: the model's floating buffers, kept equal across ranks (``track_buffers``)
        self.buffers = BufferSync(self.comm)

    # --- the algorithm's policy -----------------------------------------------------------
    #: The one object that holds the algorithm's state and hyperparameters, with ``bits`` (a
    #: ``comm.BitCounter``), ``step``, ``state_dict()`` and ``load_state_dict()``; subclasses set
    #: it from ``_new_algorithm_state()`` in their constructor.
    algorithm_state = None

    @abstractmethod
    def _new_algorithm_state(self):
        """A fresh state object (what the constructor makes), also for plain torch checkpoints."""

    @abstractmethod
    def _averages_gradients(self) -> bool:
        """True when this step exchanges gradients before the local update."""

    def _exchange_gradients(self, report: LocalReport, writeback: float) -> Verdict:
        """Exchange this step's gradients, divided by ``self.loss_scale``, agree on ``report``
        (``optim.agreement``) and write the reduced result times ``writeback`` into ``.grad``,
        unless the verdict says skip: then every memory must be as it was before the step."""
        raise NotImplementedError(f"{type(self).__name__} does not exchange gradients")

    def _compressed_scale(self) -> Optional[float]:
        """The loss scale of gradients already compressed this step (backward hooks), or None."""
        return None

    def _before_local_step(self) -> None:
        """Runs before the wrapped optimizer's update on a model-averaging step."""

    def _after_local_step(self) -> None:
        """Runs after the wrapped optimizer's update on a model-averaging step (a sync, when due)."""

    def _on_step_end(self) -> None:
        """Runs at the end of every step, taken or skipped (reset per-step bookkeeping)."""

    # --- Horovod's methods ----------------------------------------------------------------
    def synchronize(self) -> None:
        """Finish this step's gradient exchange and write the result into ``.grad`` (Horovod's
        ``optimizer.synchronize()``). A no-op on local steps, which exchange no gradients."""
        self._synchronize(AmpInputs())

    def _synchronize(self, amp: AmpInputs) -> None:
        if self._synchronized or not self.comm.included or not self._averages_gradients():
            return
        self._ensure_same_model()
        ahead = self._compressed_scale()
        report = LocalReport(overflow=amp.overflow, amp=amp.active,
                             scale_mismatch=amp.scale is not None and ahead is not None and ahead != amp.scale)
        if amp.scale is not None:
            self.loss_scale = amp.scale
        # Inside scaler.step() the result is written unscaled; an explicit synchronize() comes
        # before the scale is known (Horovod's recipe): write it in loss-scale units.
        writeback = 1.0 if amp.scale is not None else self.loss_scale
        verdict = self._exchange_gradients(report, writeback)
        self.bits.record_control(self.step_count, 8 * verdict.sent_bytes)
        if verdict.non_finite:
            poison_grads_(self.named_params)
        self._verdict, self._synchronized = verdict, True

    @contextmanager
    def skip_synchronize(self):
        """Inside this block ``step()`` does not synchronize: the recipe
        ``synchronize(); clip or unscale_; with skip_synchronize(): step()``."""
        self._should_synchronize = False
        try:
            yield
        finally:
            self._should_synchronize = True

    def track_buffers(self, named_buffers) -> None:
        """Keep these buffers (``model.named_buffers()``; the floating ones: BatchNorm's running
        statistics) equal on every rank: broadcast from rank 0 after each gradient exchange,
        averaged at each model-averaging round (``optim.buffers``), their bits counted. Without
        it they stay per rank, as with Horovod's own optimizer."""
        self.buffers = BufferSync(self.comm, named_buffers)

    def set_backward_passes_per_step(self, passes: int) -> None:
        """Accumulate ``passes`` backward passes before each exchange (Horovod's)."""
        self.backward_passes_per_step = self.options.check_passes(passes)

    # --- the step -------------------------------------------------------------------------
    def step(self, closure=None):
        """One training step: exchange and local update in the algorithm's order.

        Under a GradScaler every rank steps; a step that overflowed on any rank is skipped on
        every rank (memories, shared model and step counter untouched). Without one, NaN/Inf on
        any rank raises the same ``NonFiniteGradientError`` on every rank.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if called_from_broadcast_optimizer_state():
            self.optimizer.step()  # only creates the inner state, as Horovod does for its own wrapper
            return loss
        amp = AmpInputs.of(self)
        try:
            if not self.comm.included:
                unscale_grads_(self.named_params, amp.inv_scale)
                if not amp.overflow:
                    self.optimizer.step()
                return loss
            taken = self._gradient_step(amp) if self._averages_gradients() else self._local_step(amp)
            if taken:
                self.algorithm_state.step += 1
            if amp.scale is not None:
                self.loss_scale = amp.scale
        finally:
            self._synchronized, self._verdict = False, None
            self._on_step_end()
        return loss

    def _gradient_step(self, amp: AmpInputs) -> bool:
        if self._synchronized:
            if self._should_synchronize:
                warnings.warn("optimizer.step() called without optimizer.skip_synchronize() context after "
                              "optimizer.synchronize(): the gradients are not exchanged again. Use "
                              "optimizer.skip_synchronize() around step() after synchronize().")
            if amp.scale is not None:  # synchronize() wrote loss-scaled values, then scaler.step()
                unscale_grads_(self.named_params, amp.inv_scale)
        elif self._should_synchronize:
            self._synchronize(amp)
        verdict = self._verdict
        if verdict is not None and verdict.non_finite:
            if amp.active:
                return False
            raise verdict.error([n for n, _ in self._exchanged_names()], "the gradient")
        if amp.overflow:  # the scaler found inf in the exchanged (identical) gradients: every rank skips
            return False
        self.optimizer.step()
        self.buffers.broadcast(self.step_count, self.bits)
        return True

    def _local_step(self, amp: AmpInputs) -> bool:
        if amp.active:
            self._ensure_same_model()
            verdict = agree(self.comm, LocalReport(overflow=amp.overflow), "hvd_qsparse.local")
            self.bits.record_control(self.step_count, 8 * verdict.sent_bytes)
            if verdict.non_finite:
                return False
            unscale_grads_(self.named_params, amp.inv_scale)
        self._before_local_step()
        self.optimizer.step()
        self._after_local_step()
        return True

    def _fresh_name(self, base: str) -> str:
        """A collective name never used before in this optimizer (the same on every rank).

        Why: under ``hvd.join()`` Horovod 0.28.1's joined ranks replay every cached response,
        and a cached allgather then crashes their background loop (``unordered_map::at``); a
        name that is never reused is never cached, so the allgather is refused cleanly instead
        and the exchange falls back to an allreduce (``comm.join_fallback``).
        """
        self._serial += 1
        return f"{base}.{self._serial}"

    def _exchanged_names(self):
        """``[(name, param)]`` in the order the exchange's tensor indices count them."""
        return self.named_params

    def _ensure_same_model(self) -> None:
        """Before the first exchange (and in ``broadcast_state``): every rank must hold the same parameters (names, shapes,
        dtypes, order), or every rank raises naming the first difference."""
        if not self._model_checked:
            check_same_model(self.comm, self.named_params)
            self._model_checked = True

    # --- torch.optim.Optimizer habits (the rest in ``optim.composition``) -------------------
    @property
    def _parameter_names(self):
        """``{param: name}``, as Horovod's wrapper has it."""
        return {p: n for n, p in self.named_params}

    def add_param_group(self, param_group: dict) -> None:
        """Add a group to the wrapped optimizer; its parameters join the exchange (call it on
        every rank alike). Names: ``param_group["names"]`` if given, else ``group{g}.param{i}``."""
        names = param_group.pop("names", None)
        self._check_can_add_params()
        taken = {n for n, _ in self.named_params}
        if names and any(n in taken for n in names):
            raise ValueError(f"add_param_group: names {[n for n in names if n in taken]} are already used")
        self.optimizer.add_param_group(param_group)
        g, params = len(self.param_groups) - 1, self.param_groups[-1]["params"]
        names = names or [f"group{g}.param{i}" for i in range(len(params))]
        added = [(n, p) for n, p in zip(names, params) if p.requires_grad]
        self.named_params += added
        self._model_checked = False
        self._on_params_added(added)

    def _check_can_add_params(self) -> None:
        """Raise when this algorithm cannot take new parameters now."""

    def _on_params_added(self, added) -> None:
        """New parameters joined ``named_params`` (rebuild buckets, shard plans ...)."""

    @property
    def bits(self):
        """This rank's ``comm.BitCounter``: per-step and total bits sent."""
        return self.algorithm_state.bits

    @property
    def step_count(self) -> int:
        """Steps taken so far (steps skipped on every rank do not count)."""
        return self.algorithm_state.step

    def load_synchronized_model(self) -> None:
        """Copy the model every rank agrees on into the parameters (for evaluation); a no-op for
        algorithms whose replicas are identical after every step."""

    #: options that change nothing the run computes or sends, left out of its setting line
    bookkeeping_options = ("seed",)
    #: options left out of the setting line when they hold these values
    quiet_defaults: dict = {}

    @classmethod
    def describe_setting(cls, options: dict) -> str:
        """One line for this algorithm's options, e.g. ``topk+sign(ratio=0.01) H=8``."""
        return describe_setting(options, cls.bookkeeping_options, cls.quiet_defaults)

    @classmethod
    def add_arguments(cls, group) -> None:
        """Add this algorithm's own flags to an ``argparse`` argument group."""

    @classmethod
    def options_from_args(cls, args) -> dict:
        """Constructor keyword arguments from the parsed flags.

        Raises:
            ValueError: a bad value or combination, naming the flag and the accepted values.
        """
        return {}

    def flat_numel(self) -> int:
        """Number of trained entries, d."""
        return sum(p.numel() for _, p in self.named_params)


__all__ = ["STATE_KEY", "WrappedOptimizer", "resolve_named_parameters"]
