"""The optimizer wrapper, its Horovod options, and the backward-hook buckets the algorithms build on."""
from hvd_qsparse.optim.agreement import LocalReport, NonFiniteGradientError, Verdict, agree
from hvd_qsparse.optim.amp import AmpInputs
from hvd_qsparse.optim.base import STATE_KEY, WrappedOptimizer
from hvd_qsparse.optim.buckets import GradientBuckets
from hvd_qsparse.optim.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from hvd_qsparse.optim.ddp_hook import CompressionHookState, ddp_hook
from hvd_qsparse.optim.fragments import FragmentPlan
from hvd_qsparse.optim.fusion import FUSIONS, Fusion
from hvd_qsparse.optim.grads import read_grad, sparse_grads, write_grad
from hvd_qsparse.optim.options import HorovodOptions
from hvd_qsparse.optim.outer import OUTERS, OuterOptimizer, outer_factory
from hvd_qsparse.optim.params import resolve_named_parameters
from hvd_qsparse.optim.pipeline import Batch, Round, StepPipeline, region_keys
from hvd_qsparse.optim.signature import ModelMismatchError, check_same_model
from hvd_qsparse.optim.timing import StepTimer

__all__ = ["CompressionHookState", "ddp_hook", "FUSIONS", "Fusion", "FragmentPlan", "OUTERS", "OuterOptimizer", "outer_factory", "CheckpointError", "load_checkpoint", "save_checkpoint", "Batch", "Round", "StepPipeline", "AmpInputs", "GradientBuckets", "HorovodOptions", "LocalReport", "ModelMismatchError",
           "NonFiniteGradientError", "STATE_KEY", "StepTimer", "Verdict", "WrappedOptimizer", "agree",
           "check_same_model", "read_grad", "region_keys", "resolve_named_parameters", "sparse_grads", "write_grad"]
