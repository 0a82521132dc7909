"""The package's argument checks, in one place: a value or a ValueError naming it and the range.

Every layer validates its hyperparameters with these, so one parameter gets one message
wherever it is given (constructor keyword, ``DistributedOptimizer`` option or training flag).
It imports nothing from the package, so any layer may use it.
"""
import math
from typing import Iterable, Optional


def check_count(name: str, value, low: int, high: Optional[int], meaning: str) -> int:
    """An integer in [low, high] (``high`` None: no upper bound), or a ValueError naming it."""
    ok = not isinstance(value, bool) and isinstance(value, int) and value >= low and (high is None or value <= high)
    if not ok:
        accepted = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an integer {accepted} ({meaning}), got {value!r}")
    return value


def check_int(name: str, value, low: int, meaning: str) -> int:
    """An integer >= ``low`` or a ValueError naming the parameter."""
    return check_count(name, value, low, None, meaning)


def check_bool(name: str, value) -> bool:
    """True or False, or a ValueError naming the parameter."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def check_choice(name: str, value, accepted: Iterable[str]) -> str:
    """One of ``accepted``, or a ValueError listing them."""
    accepted = list(accepted)
    if value not in accepted:
        raise ValueError(f"{name} must be one of {', '.join(accepted)}, got {value!r}")
    return value


def check_ratio(ratio: float) -> float:
    """Validate a sparsification ratio: a number in (0, 1]."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 < float(ratio) <= 1.0:
        raise ValueError(f"ratio must be a number in (0, 1] (fraction of entries kept), got {ratio!r}")
    return float(ratio)


def check_levels(levels: int) -> int:
    """Validate a quantization level count: an integer >= 1."""
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels must be an integer >= 1 (QSGD's s), got {levels!r}")
    return levels


def check_beta(beta, name: str = "beta") -> float:
    """GD-SEC's β, a number in (0, 1], or a ValueError naming ``name``."""
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0.0 < float(beta) <= 1.0:
        raise ValueError(f"{name} must be a number in (0, 1] (weight of the previously transmitted "
                         f"combination), got {beta!r}")
    return float(beta)


def check_xi(xi, name: str = "xi") -> float:
    """GD-SEC's ξ, a finite number >= 0, or a ValueError naming ``name``."""
    if isinstance(xi, bool) or not isinstance(xi, (int, float)) or not math.isfinite(xi) or xi < 0:
        raise ValueError(f"{name} must be a finite number >= 0 (threshold scale; 0 = plain distributed "
                         f"gradient descent), got {xi!r}")
    return float(xi)


def check_density(density, name: str = "max_density") -> float:
    """GD-SEC's cap on the fraction of a tensor's entries sent per step, in (0, 1]."""
    if isinstance(density, bool) or not isinstance(density, (int, float)) or not 0.0 < float(density) <= 1.0:
        raise ValueError(f"{name} must be a number in (0, 1] (the most entries of each tensor sent per step, "
                         f"as a fraction; 1 = no cap, the paper's rule), got {density!r}")
    return float(density)


def check_decay(decay, name: str = "memory_decay") -> float:
    """An error-feedback memory decay β, a number in (0, 1], or a ValueError naming ``name``."""
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 < float(decay) <= 1.0:
        raise ValueError(f"{name} must be a number in (0, 1] (factor on the error-feedback memory before "
                         f"it is added; 1 = no decay), got {decay!r}")
    return float(decay)


def check_fraction(value, name: str, meaning: str) -> float:
    """A number in [0, 1), or a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1) ({meaning}), got {value!r}")
    return float(value)


def check_positive(value, name: str, meaning: str) -> float:
    """A finite number > 0, or a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0 ({meaning}), got {value!r}")
    return float(value)
