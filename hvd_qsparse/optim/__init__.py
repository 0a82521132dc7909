"""The optimizer wrapper and the backward-hook buckets the algorithms build on."""
from hvd_qsparse.optim.base import WrappedOptimizer, resolve_named_parameters
from hvd_qsparse.optim.buckets import GradientBuckets
from hvd_qsparse.optim.timing import StepTimer

__all__ = ["GradientBuckets", "StepTimer", "WrappedOptimizer", "resolve_named_parameters"]
