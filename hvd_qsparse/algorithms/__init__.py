"""One policy per paper: when to talk and what to send."""
from hvd_qsparse.algorithms.doublesqueeze import DoubleSqueeze
from hvd_qsparse.algorithms.doublesqueeze_state import DoubleSqueezeState
from hvd_qsparse.algorithms.gdsec import GDSEC
from hvd_qsparse.algorithms.gdsec_state import GdsecState
from hvd_qsparse.algorithms.qsparse import QsparseLocalSGD
from hvd_qsparse.algorithms.qsparse_async import QsparseAsyncLocalSGD
from hvd_qsparse.algorithms.qsparse_async_state import QsparseAsyncState
from hvd_qsparse.algorithms.qsparse_state import QsparseState
from hvd_qsparse.algorithms.registry import (DistributedOptimizer, algorithm_class, available_algorithms,
                                             register_algorithm)
from hvd_qsparse.algorithms.risgd import RISGD
from hvd_qsparse.algorithms.risgd_state import RiSGDState

__all__ = ["DistributedOptimizer", "QsparseLocalSGD", "QsparseState", "algorithm_class", "available_algorithms",
           "register_algorithm"]
__all__ += ["DoubleSqueeze", "DoubleSqueezeState"]
__all__ += ["RISGD", "RiSGDState"]
__all__ += ["QsparseAsyncLocalSGD", "QsparseAsyncState"]
__all__ += ["GDSEC", "GdsecState"]
