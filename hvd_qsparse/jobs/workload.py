"""The job's ``--model``, its data and the wrapped optimizer, with each model's defaults.

Defaults follow what each model trains well with on its own, so that a flag left out still gives
a sensible run: SGD with momentum for the MLP and the CNN, AdamW for the transformer (SGD trains
attention slowly), 32 images or 16 windows of 64 characters per rank. A flag that only one model
reads (``--hidden``) given for another is refused rather than ignored.
"""
import argparse
import math

import torch

from hvd_qsparse.workloads.tasks import TASKS

INNER_OPTIMIZERS = ("auto", "sgd", "adamw")
SCHEDULES = ("constant", "cosine")
BUFFER_MODES = ("sync", "local")
#: the optimizer ``--optimizer auto`` picks, per model
AUTO_OPTIMIZER = {"mlp": "sgd", "resnet": "sgd", "transformer": "adamw"}
#: ``--lr`` when not given, per optimizer
DEFAULT_LR = {"sgd": 0.05, "adamw": 0.002}
#: ``--batch-size`` when not given, per model (samples per rank: images, or windows)
DEFAULT_BATCH = {"mlp": 32, "resnet": 32, "transformer": 16}
#: flags read by one model only
MODEL_FLAGS = {"hidden": "mlp"}


def check_model_flags(parser: argparse.ArgumentParser, args: argparse.Namespace, given) -> None:
    """Fill the per-model defaults into ``args`` and refuse flags the model does not read."""
    for dest, model in MODEL_FLAGS.items():
        if dest in given and args.model != model:
            parser.error(f"--{dest}: only --model {model} reads it, not --model {args.model}; leave it out")
    if args.optimizer == "auto":
        args.optimizer = AUTO_OPTIMIZER[args.model]
    if "momentum" in given and args.optimizer != "sgd":
        parser.error(f"--momentum: only --optimizer sgd reads it, not {args.optimizer}; leave it out")
    if args.lr is None:
        args.lr = DEFAULT_LR[args.optimizer]
    if args.batch_size is None:
        args.batch_size = DEFAULT_BATCH[args.model]


def make_task(args: argparse.Namespace):
    """The ``workloads.base.Task`` of ``--model``."""
    if args.model == "mlp":
        return TASKS["mlp"](hidden=args.hidden)
    return TASKS[args.model]()


def make_inner_optimizer(args: argparse.Namespace, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The torch optimizer the algorithm wraps (it takes the local steps)."""
    if args.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    return torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)


def make_schedule(args: argparse.Namespace, opt, total_steps: int):
    """``--schedule``'s LR scheduler on the wrapped optimizer (stepped once per step), or None.

    ``cosine`` decays the rate from ``--lr`` to 0 over the run (Loshchilov & Hutter, 2017), so
    the last steps are small and the final score does not depend on where a noisy last step
    landed: what a comparison of algorithms needs.
    """
    if args.schedule == "constant":
        return None
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps)))
