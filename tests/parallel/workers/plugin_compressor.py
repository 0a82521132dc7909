"""A compressor from one user file (tests/plugins/ternary.py), run by name through every
algorithm that takes a compressor, on real ranks: each trains, sends fewer bits than dense
fp32 and ends with the same model on every rank."""
import sys
from pathlib import Path

import horovod.torch as hvd
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))
import ternary  # noqa: E402,F401  (registers "ternary": the only step a user takes)

from hvd_qsparse import DistributedOptimizer  # noqa: E402
from hvd_qsparse.algorithms import algorithm_class, available_algorithms  # noqa: E402

STEPS = 16
#: each algorithm's own keywords for a short run
EXTRA = {"qsparse": {"local_steps": 2}, "risgd": {"local_steps": 2}, "qsparse-async": {"local_steps": 2},
         "doublesqueeze": {}}


def data(rank: int, step: int):
    gen = torch.Generator().manual_seed(100 * rank + step)
    x = torch.randn(32, 10, generator=gen)
    return x, x @ torch.linspace(-1, 1, 10).reshape(10, 1)


def loss_on_all(model) -> float:
    return float(sum(nn.functional.mse_loss(model(x), y) for x, y in (data(r, 0) for r in range(hvd.size()))))


def run(algorithm: str, compressor: str) -> None:
    torch.manual_seed(0)
    model = nn.Linear(10, 1)
    before = loss_on_all(model)
    opt = DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.05), model.named_parameters(),
                               algorithm=algorithm, compressor=compressor, ratio=0.5, **EXTRA[algorithm])
    opt.broadcast_state(0)
    for step in range(STEPS):
        x, y = data(hvd.rank(), step)
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    opt.load_synchronized_model()
    label = f"{algorithm} {compressor}"
    state = getattr(opt, "local_sgd_state", opt.algorithm_state)  # RI-SGD's compressor is its local SGD's
    assert state.compressor.name == compressor, label
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    everyone = hvd.allgather(flat.unsqueeze(0), name=f"plugin.{label}")
    assert all(torch.equal(row, everyone[0]) for row in everyone), f"{label}: replicas differ"
    after = loss_on_all(model)
    assert after < 0.5 * before, f"{label}: loss {before:.4f} -> {after:.4f}"
    dense = sum(s.dense for s in opt.bits.history)
    assert 0 < opt.bits.total_analytic < dense, f"{label}: {opt.bits.total_analytic} bits against dense {dense}"
    if algorithm != "qsparse-async":  # its one-sided accumulates carry fp32 values (+ int32 offsets)
        assert 0 < opt.bits.total_sent < dense, f"{label}: {opt.bits.total_sent} bits sent against dense {dense}"
    print(f"rank {hvd.rank()}: {label}: loss {before:.3f} -> {after:.3f}, bits {opt.bits.total_sent} "
          f"of dense {dense}", flush=True)


def main() -> None:
    hvd.init()
    takers = [a for a in available_algorithms() if getattr(algorithm_class(a), "takes_compressor", True)]
    assert sorted(takers) == sorted(EXTRA), takers  # a new algorithm that takes compressors joins this test
    for algorithm in takers:
        for compressor in ("ternary", "topk+ternary"):
            run(algorithm, compressor)
    print(f"rank {hvd.rank()}: OK", flush=True)


if __name__ == "__main__":
    main()
