"""NaN on one rank in the paths that send values as they are (dense warm-up steps, the
summable ``none`` compressor, RI-SGD's plain model average) is refused on every rank, naming
the rank, and no parameter turns non-finite: no run "succeeds" with NaN weights. With the
sharded exchange the owners skip their pass, so no NaN reaches their memories either."""
import horovod.torch as hvd
import torch
from torch import nn

import hvd_qsparse
from hvd_qsparse.optim import NonFiniteGradientError

from common import batch, flat_params, make_model

BAD_STEP = 1
SETTINGS = [
    ("qsparse", dict(compressor="topk+sign", ratio=0.3, local_steps=4, warmup_steps=3)),  # NaN in warm-up
    ("qsparse", dict(compressor="none", local_steps=1)),                                  # summable, H = 1
    ("qsparse", dict(compressor="fp16", local_steps=1)),
    ("risgd", dict(compressor="none", local_steps=1)),                                    # RI-SGD's plain average
    ("qsparse", dict(compressor="none", local_steps=2)),                                  # summable model change
    ("qsparse", dict(compressor="topk+sign", ratio=0.3, local_steps=1, exchange="sharded")),  # owners skip
    ("qsparse", dict(compressor="topk", ratio=0.3, local_steps=2, exchange="sharded")),
]


def run(algorithm: str, options: dict) -> None:
    model = make_model()
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model.named_parameters(),
                                           algorithm=algorithm, **options)
    label = f"{algorithm} {options}"
    try:
        for step in range(8):
            x, y = batch(hvd.rank(), step)
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            if step == BAD_STEP and hvd.rank() == 1:
                loss = loss * float("nan")
            loss.backward()
            opt.step()
        raise AssertionError(f"{label}: NaN on rank 1 raised nothing")
    except NonFiniteGradientError as error:
        assert "rank 1" in str(error), f"{label}: the error does not name rank 1: {error}"
    assert torch.isfinite(flat_params(model)).all(), f"{label}: NaN reached the parameters"
    owners = getattr(opt.algorithm_state, "server_memory", None)
    assert owners is None or all(torch.isfinite(m).all() for m in owners.memory.values()), \
        f"{label}: NaN reached an owner's memory"
    print(f"rank {hvd.rank()}: refused {label}", flush=True)


def main() -> None:
    hvd.init()
    for algorithm, options in SETTINGS:
        run(algorithm, options)
    print(f"rank {hvd.rank()}: OK", flush=True)


if __name__ == "__main__":
    main()
