"""Tensor fusion for compression: many small tensors compressed as one flat bucket.

A model with many small tensors (a CNN's BatchNorm weights and biases, a transformer's
LayerNorms) pays a compressor's fixed cost once per tensor: the launches, the finiteness check
(one host synchronisation), the framing. Fused, consecutive tensors of a bucket are
concatenated into one fp32 vector that goes through error feedback and the compressor once, and
the exchanged sum is cut back into the tensors, as Horovod's tensor fusion and DDP's buckets do
for dense allreduce.

``mode="bucket"`` (the default) changes what a sparsifier selects: top-k then keeps the
k = ⌈ratio·d_B⌉ largest entries of the whole bucket B rather than ⌈ratio·d_t⌉ of each tensor t,
and a quantizer shares one scale (norm) per bucket. Both are contractions of the same factor on
the bucket, so error feedback's guarantees hold unchanged (Stich et al. 2018 state them for any
δ-contraction of the whole vector); the per-tensor rule (``mode="tensor"``) is kept as an option
for runs that need each layer to keep its own share. The error-feedback memory and the shared
seed of a fused bucket are keyed by the bucket's name, ``first...last`` of its tensors' names.
"""
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch

from hvd_qsparse.validation import check_choice, check_int

#: ``--fusion``: ``bucket`` compresses each bucket as one vector, ``tensor`` every tensor alone
FUSIONS = ("bucket", "tensor")


@dataclass(frozen=True)
class Member:
    """One tensor inside a fused vector: its name, shape and number of entries."""

    name: str
    shape: torch.Size
    numel: int


@dataclass(frozen=True)
class Group:
    """Consecutive tensors compressed as one vector, named ``first...last`` (or as the tensor
    itself when alone, so a lone tensor keys its memory and seed exactly as unfused)."""

    positions: Tuple[int, ...]
    members: Tuple[Member, ...]

    @property
    def name(self) -> str:
        if len(self.members) == 1:
            return self.members[0].name
        return f"{self.members[0].name}...{self.members[-1].name}"

    @property
    def numel(self) -> int:
        return sum(m.numel for m in self.members)

    def join(self, values: Sequence[torch.Tensor]) -> torch.Tensor:
        """The members' values as one vector (the tensor itself when alone)."""
        if len(values) == 1:
            return values[0]
        return torch.cat([v.detach().reshape(-1).float() for v in values])

    def split(self, total: torch.Tensor) -> List[torch.Tensor]:
        """A fused vector cut back into the members' shapes (views, no copy)."""
        if len(self.members) == 1:
            return [total]
        pieces = total.reshape(-1).split([m.numel for m in self.members])
        return [piece.view(m.shape) for piece, m in zip(pieces, self.members)]


class Fusion:
    """How a list of named tensors is cut into fused groups.

    Args:
        mode: ``bucket`` (consecutive tensors up to ``cap_numel`` entries per group) or
            ``tensor`` (no fusion).
        cap_numel: the most entries of a group; a larger tensor forms a group alone.
    """

    def __init__(self, mode: str = "bucket", cap_numel: int = 1 << 22):
        self.mode = check_choice("fusion", mode, FUSIONS)
        self.cap_numel = check_int("bucket_cap_numel", cap_numel, 1, "entries per fused bucket")

    def groups(self, named_values: Sequence[Tuple[str, torch.Tensor]]) -> List[Group]:
        """Consecutive runs of ``named_values``, in order, each at most ``cap_numel`` entries
        (or a single tensor)."""
        runs: List[List[int]] = []
        size = 0
        for i, (_, value) in enumerate(named_values):
            n = value.numel()
            if not runs or self.mode == "tensor" or size + n > self.cap_numel:
                runs.append([])
                size = 0
            runs[-1].append(i)
            size += n
        return [Group(tuple(run), tuple(Member(named_values[i][0], named_values[i][1].shape,
                                               named_values[i][1].numel()) for i in run)) for run in runs]
