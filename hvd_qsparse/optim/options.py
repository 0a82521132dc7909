"""Horovod's ``DistributedOptimizer`` keywords, checked once and carried by every wrapper.

Each keyword means for these algorithms what it means in Horovod:

- ``backward_passes_per_step=N``: N backward passes accumulate into ``.grad`` before the
  exchange (backward hooks count N gradients per parameter; local steps simply accumulate).
- ``op``: ``average`` (the mean over ranks) or ``sum`` of what the ranks send; Adasum combines
  full-precision gradients pairwise and is refused by every algorithm here.
- ``gradient_predivide_factor=f``: with ``average``, scale by 1/f before the sum and f/R after;
  it matters to the dense fp16/fp32 allreduces (passed to Horovod), while compressed payloads
  are decoded and summed in fp32, where it changes nothing.
- ``groups`` / ``num_groups``: how backward-hook exchanges are fused: each group is exchanged
  as one bucket once all its gradients are ready (an int splits the parameters into that many
  groups; parameters in no listed group form one each, as in Horovod).
- ``sparse_as_dense``: accepted for compatibility; sparse gradients are always densified for
  the exchange (the compressors select from the dense tensor) and written back sparse, which is
  what Horovod does with ``sparse_as_dense=True`` (see ``optim.grads``).
- ``process_set``: the ranks the algorithm runs over; others take plain local steps (under
  ``backend="torch"``: a list of global ranks, a ``backend.RankSet``, or a torch.distributed
  group this rank belongs to).
- ``backend``: whose collectives carry the exchanges (``backend.choice``): ``horovod``,
  ``torch`` or ``auto``; resolved once, when the options are made.
"""
import warnings
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import torch

from hvd_qsparse.comm import make_communicator, reduce_op_name, resolve_backend
from hvd_qsparse.validation import check_bool

Groups = Union[None, int, List[List[torch.Tensor]]]


def check_passes(passes) -> int:
    """Horovod's ``backward_passes_per_step``: an integer > 0 (Horovod's own wording)."""
    if isinstance(passes, bool) or not isinstance(passes, int) or passes <= 0:
        raise ValueError(f"backward_passes_per_step must be an integer > 0, got {passes!r}")
    return passes


def check_groups(groups: Groups) -> Groups:
    """Horovod's rules: a positive int, or lists of tensors with each tensor at most once."""
    if groups is None:
        return None
    if isinstance(groups, bool) or not (isinstance(groups, list) or (isinstance(groups, int) and groups > 0)):
        raise ValueError(f"groups should be a non-negative integer or a list of lists of torch.Tensor, got {groups!r}")
    if isinstance(groups, list):
        seen = set()
        for group in groups:
            for p in group:
                if not isinstance(p, torch.Tensor):
                    raise ValueError("groups must consist of torch.Tensor")
                if id(p) in seen:
                    raise ValueError("groups: a parameter can only appear once")
                seen.add(id(p))
    return groups


@dataclass
class HorovodOptions:
    """The keywords of ``hvd.DistributedOptimizer`` besides the optimizer, names and compression."""

    backward_passes_per_step: int = 1
    op: str = "average"
    gradient_predivide_factor: float = 1.0
    groups: Groups = None
    sparse_as_dense: bool = False
    process_set: object = None
    backend: str = "auto"

    def __post_init__(self):
        self.backend = resolve_backend(self.backend)
        self.op = reduce_op_name(self.op)
        self.backward_passes_per_step = check_passes(self.backward_passes_per_step)
        f = self.gradient_predivide_factor
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not f > 0:
            raise ValueError(f"gradient_predivide_factor must be a number > 0, got {f!r}")
        if f != 1.0 and self.op != "average":
            raise ValueError("gradient_predivide_factor not supported with op != Average")
        self.groups = check_groups(self.groups)
        if self.backend == "torch" and isinstance(self.process_set, (list, tuple)):
            from hvd_qsparse.backend import RankSet
            self.process_set = RankSet(self.process_set)  # one dist.new_group, made here on every rank
        if self.process_set is not None and self.communicator().is_global:
            self.process_set = None  # hvd.global_process_set given explicitly: the default
        check_bool("sparse_as_dense", self.sparse_as_dense)

    @classmethod
    def from_horovod(cls, num_groups: int = 0, groups: Groups = None, **keywords) -> "HorovodOptions":
        """Horovod's signature, ``num_groups`` (deprecated there) folded into ``groups``."""
        if num_groups:
            warnings.warn("num_groups has been replaced by groups in Horovod; taking it as groups",
                          DeprecationWarning)
            groups = num_groups if groups is None else groups
        return cls(groups=groups, **keywords)

    check_passes = staticmethod(check_passes)

    def communicator(self):
        """A ``HorovodCommunicator`` or ``TorchCommunicator`` over ``process_set``."""
        return make_communicator(self.backend, self.process_set)

    def reduce_scale(self, size: int) -> float:
        """What the sum over ranks is multiplied by: 1/R for ``average``, 1 for ``sum``."""
        return 1.0 / size if self.op == "average" else 1.0

    def refuse(self, algorithm: str, **meaningless) -> None:
        """Refuse keywords that mean nothing for ``algorithm``: ``{keyword: reason}`` for each
        one set to other than its default (every rank raises the same ValueError)."""
        defaults = HorovodOptions()
        for keyword, reason in meaningless.items():
            if getattr(self, keyword) != getattr(defaults, keyword):
                raise ValueError(f"{keyword}={getattr(self, keyword)!r} does not apply to algorithm "
                                 f"{algorithm!r}: {reason}")

    def bucket_groups(self, named_params: Sequence[Tuple[str, torch.Tensor]]) -> Optional[List[List[str]]]:
        """The names of each fused group, or None for size-capped buckets."""
        if self.groups is None:
            return None
        names = [n for n, _ in named_params]
        if isinstance(self.groups, int):
            count = min(self.groups, len(names))
            cut = [round(i * len(names) / count) for i in range(count + 1)]
            return [names[cut[i]:cut[i + 1]] for i in range(count) if cut[i] < cut[i + 1]]
        by_id = {id(p): n for n, p in named_params}
        listed = [[by_id[id(p)] for p in group if id(p) in by_id] for group in self.groups]
        grouped = {n for group in listed for n in group}
        return [g for g in listed if g] + [[n] for n in names if n not in grouped]
