"""What the benchmark runs: the peers and our algorithms, one row each, as data.

Every variant trains the same task (the job's ``--model``), data split, seeds and inner
optimizer; a variant only adds its own flags. The 16-bit dense baselines are Horovod's fp16
compression and DDP's fp16 and bf16 compression hooks. ``hvd-fp32`` (Horovod's dense fp32
allreduce) is the baseline that ratios and speed-ups are measured against.

Settings chosen here (and why):
- Qsparse-local-SGD at H = 1, 4, 8 with ``topk+sign`` and ``topk+qsgd`` (``--ratio``,
  ``--levels`` from the command line): the paper's grid, short of its H = 16.
- Asynchronous Qsparse at H = 8 with ``topk+sign`` (its sync gaps are at most H).
- DoubleSqueeze with ``sign`` and ``topk`` (it talks every step; the job refuses ``--local-steps``).
- GD-SEC with β = 1 and ξ = 10, 20 (docs/gdsec.md: ξ = 20 sent the fewest bits on digits
  with SGD + momentum, 40 diverged).
- RI-SGD with q = 1, 2 chunks per worker, τ = 8, plain fp32 model averages (the paper's
  method): on the i.i.d. split every variant shares, q = 2 shows the price of redundancy.
  Its epoch is a pass over a worker's q chunks, so q = 2 takes twice the steps per epoch.
- PostLocalSGD with period 8, like our H = 8, and 32; PowerSGD at rank ``--powersgd-rank``.
- The DiLoCo family at H = 8, 32, 128: torchft 0.2.0's own DiLoCo (dense fp32 pseudo-gradients,
  outer Nesterov lr 0.7, momentum 0.9); Qsparse with the same outer optimizer; SparseLoCo's
  recipe (top-k + sign, memory decay 0.95, the plain outer rule); the streaming variants with
  a one-step sync delay, whole and in 4 fragments; and this library's own DiLoCo (the identity
  compressor with the outer Nesterov optimizer), a check against torchft's. ``no-comm`` runs local steps that never
  synchronize: the step time with no communication at all (its score means nothing).
- ``qsparse-topk+sign-H1-torch`` and ``-H4-torch``: the same runs as their Horovod rows, under
  torchrun on the torch.distributed backend (Gloo), so the two paths show side by side.
"""
import fnmatch
from dataclasses import dataclass
from typing import List, Tuple

TRAIN = "hvd_qsparse.jobs.train"
PEERS = "hvd_qsparse.bench.peers"
BASELINE = "hvd-fp32"
FAMILIES = {"all": ("peer", "ours"), "peers": ("peer",), "ours": ("ours",)}


@dataclass(frozen=True)
class Variant:
    """One row of the benchmark.

    Attributes:
        name: the row's name, its files' stem and its label in the plots.
        family: ``peer`` or ``ours``.
        algorithm: what "at its best setting" groups by (``qsparse``, ``risgd``, ...).
        module: the program the launcher starts (``python -m MODULE``).
        flags: the variant's own flags (the shared ones come from the command line).
        launcher: ``mpirun`` (Horovod, and the peers' own set-up), or ``torchrun`` (our job on
            the torch.distributed backend, Gloo).
    """

    name: str
    family: str
    algorithm: str
    module: str
    flags: Tuple[str, ...]
    launcher: str = "mpirun"


def _ours(name: str, algorithm: str, *flags: str, group: str = "") -> Variant:
    """A run of ``--algorithm algorithm``, grouped for "at its best" under ``group`` (default: the algorithm)."""
    return Variant(name, "ours", group or algorithm, TRAIN, ("--algorithm", algorithm, "--no-progress", *flags))


def _on_torch(variant: Variant) -> Variant:
    """The same run under torchrun on the torch.distributed backend (Gloo), named ``<name>-torch``."""
    return Variant(f"{variant.name}-torch", variant.family, f"{variant.algorithm}-torch", variant.module,
                   (*variant.flags, "--backend", "torch"), launcher="torchrun")


def _peer(name: str, peer: str, *flags: str) -> Variant:
    return Variant(name, "peer", name, PEERS, ("--peer", peer, *flags))


VARIANTS: Tuple[Variant, ...] = (
    _peer(BASELINE, "horovod"),
    _peer("hvd-fp16", "horovod-fp16"),
    _peer("ddp", "ddp"),
    _peer("ddp-fp16", "ddp-fp16"),
    _peer("ddp-bf16", "ddp-bf16"),
    _peer("ddp-powersgd", "ddp-powersgd"),
    _peer("ddp-postlocalsgd-H8", "ddp-postlocalsgd", "--local-steps", "8"),
    *(_ours(f"qsparse-{comp}-H{h}", "qsparse", "--compressor", comp, "--local-steps", str(h))
      for comp in ("topk+sign", "topk+qsgd") for h in (1, 4, 8)),
    _ours("qsparse-async-topk+sign-H8", "qsparse-async", "--compressor", "topk+sign", "--local-steps", "8"),
    _ours("doublesqueeze-sign", "doublesqueeze", "--compressor", "sign"),
    _ours("doublesqueeze-topk", "doublesqueeze", "--compressor", "topk"),
    *(_ours(f"gdsec-xi{xi}", "gdsec", "--xi", str(xi), "--beta", "1") for xi in (10, 20)),
    _peer("ddp-postlocalsgd-H32", "ddp-postlocalsgd", "--local-steps", "32"),
    *(_peer(f"torchft-diloco-H{h}", "torchft-diloco", "--local-steps", str(h)) for h in (8, 32, 128)),
    *(_ours(f"qsparse-nesterov-topk+sign-H{h}", "qsparse", "--compressor", "topk+sign", "--local-steps",
            str(h), "--outer", "nesterov", group="qsparse-outer") for h in (8, 32, 128)),
    *(_ours(f"qsparse-nesterov-none-H{h}", "qsparse", "--compressor", "none", "--local-steps", str(h), "--outer",
            "nesterov", group="diloco-ours") for h in (8, 32)),
    _ours("sparseloco-topk+sign-H32", "qsparse", "--compressor", "topk+sign", "--local-steps", "32",
          "--memory-decay", "0.95", group="sparseloco"),
    _ours("qsparse-nesterov-topk+sign-H32-delay1", "qsparse", "--compressor", "topk+sign",
          "--local-steps", "32", "--outer", "nesterov", "--sync-delay", "1", group="qsparse-streaming"),
    _ours("qsparse-nesterov-topk+sign-H32-delay1-F4", "qsparse", "--compressor", "topk+sign",
          "--local-steps", "32", "--outer", "nesterov", "--sync-delay", "1", "--fragments", "4",
          group="qsparse-streaming"),
    _ours("no-comm", "qsparse", "--compressor", "none", "--local-steps", "1000000", group="no-comm"),
    _ours("risgd-q1-H8", "risgd", "--compressor", "none", "--local-steps", "8", "--redundancy", "1"),
    _ours("risgd-q2-H8", "risgd", "--compressor", "none", "--local-steps", "8", "--redundancy", "2"),
    *(_on_torch(_ours(f"qsparse-topk+sign-H{h}", "qsparse", "--compressor", "topk+sign", "--local-steps", str(h)))
      for h in (1, 4)),
)


def names() -> List[str]:
    return [v.name for v in VARIANTS]


def select(patterns: str, flag: str = "--variants") -> List[Variant]:
    """The variants matching comma-separated names or shell patterns (``qsparse-*``), or the
    families ``all``, ``peers``, ``ours``; in table order.

    Raises:
        ValueError: a pattern that matches nothing (the message lists the names).
    """
    chosen = set()
    for pattern in filter(None, (p.strip() for p in patterns.split(","))):
        if pattern in FAMILIES:
            hits = {v.name for v in VARIANTS if v.family in FAMILIES[pattern]}
        else:
            hits = set(fnmatch.filter(names(), pattern))
        if not hits:
            raise ValueError(f"{flag}: {pattern!r} matches no variant; accepted: all, peers, ours, shell "
                             f"patterns, or names: {', '.join(names())}")
        chosen |= hits
    if not chosen:
        raise ValueError(f"{flag}: give at least one variant (all, peers, ours, or names: {', '.join(names())})")
    return [v for v in VARIANTS if v.name in chosen]
