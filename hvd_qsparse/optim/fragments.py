r"""The model cut into fragments that synchronize on a staggered schedule (Streaming DiLoCo).

Streaming DiLoCo (Douillard et al., arXiv 2501.18512) does not synchronize the whole model every
H steps: the parameters are cut into F fragments, and fragment f synchronizes after the steps t
with

.. math::
    (t + 1) \bmod H = \lfloor f H / F \rfloor,

so every fragment synchronizes once per H steps, the rounds of the F fragments are spread over
the H steps, and each round moves 1/F of the model: the peak bandwidth falls F-fold for the same
total. F = 1 is the whole model after every H-th step.

The fragments are runs of consecutive tensors (in ``named_parameters`` order, which keeps a
layer's tensors together, as the paper's fragments are groups of layers), cut where the running
number of entries crosses f·d/F (at a tensor's middle), each holding at least one tensor.
"""
from typing import List, Sequence, Tuple

import torch

from hvd_qsparse.validation import check_count


class FragmentPlan:
    """Which tensors form each fragment (the schedule is ``QsparseState.fragments_due``).

    Args:
        named_params: ``[(name, tensor)]`` in exchange order.
        fragments: F, at least 1 and at most the number of tensors.

    Attributes:
        members: for each fragment, the positions of its tensors in ``named_params``.

    Raises:
        ValueError: F out of range, naming ``fragments`` and the bound.
    """

    def __init__(self, named_params: Sequence[Tuple[str, torch.Tensor]], fragments: int):
        self.count = check_count("fragments", fragments, 1, max(len(named_params), 1),
                                 f"runs of the model's {len(named_params)} tensors")
        self.members: List[List[int]] = cut(named_params, self.count)


def cut(named_params: Sequence[Tuple[str, torch.Tensor]], count: int) -> List[List[int]]:
    """Positions 0 … n−1 cut into ``count`` (≤ n) consecutive non-empty runs of similar size: run
    f starts at the first tensor whose middle entry lies past f·d/count (so a large tensor goes
    to the run that holds most of it), or earlier when only one tensor per remaining run is left."""
    sizes = [p.numel() for _, p in named_params]
    total, n = sum(sizes), len(sizes)
    starts, before = [0], 0
    for i, size in enumerate(sizes):
        f = len(starts)
        if 0 < i and f < count and ((2 * before + size) * count >= 2 * f * total or i == n - (count - f)):
            starts.append(i)
        before += size
    bounds = starts + [n]
    return [list(range(bounds[f], bounds[f + 1])) for f in range(count)]
