"""One policy per paper: when to talk and what to send."""
from hvd_qsparse.algorithms.qsparse import QsparseLocalSGD
from hvd_qsparse.algorithms.qsparse_state import QsparseState
from hvd_qsparse.algorithms.registry import (DistributedOptimizer, algorithm_class, available_algorithms,
                                             register_algorithm)

__all__ = ["DistributedOptimizer", "QsparseLocalSGD", "QsparseState", "algorithm_class", "available_algorithms",
           "register_algorithm"]
