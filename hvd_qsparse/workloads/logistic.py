r"""L2-regularised logistic regression on real scikit-learn data: the convex job's problem.

.. math::
    f(W) = \frac1n \sum_{i=1}^n \sum_{c=1}^C \log\bigl(1 + e^{-y_{ic} \langle w_c, x_i\rangle}\bigr)
           + \frac\lambda2 \|W\|^2, \qquad y_{ic} \in \{-1, +1\},

with ``digits`` one-vs-rest (C = 10 classes, 64 pixels) or ``breast_cancer`` (C = 1, 30
features). Features are standardised over all samples and a constant 1 is appended (the bias
is regularised too, so f is λ-strongly convex and has one minimiser). The samples are shuffled
with a seed and cut to a multiple of the number of ranks, so every rank holds an equal block and
f is exactly the mean of the ranks' local objectives. The optimum is found by damped Newton in
float64 to a gradient below 1e-12, so the relative gap (f(W) − f*)/|f*| can be trusted far
below 1e-6.
"""
from dataclasses import dataclass
from typing import Tuple

import numpy as np
import torch

DATASETS = ("digits", "breast_cancer")


def check_dataset(name: str) -> str:
    """A known data set name, or a ValueError listing them."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {name!r}")
    return name


def _features_and_labels(name: str) -> Tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer, load_digits
    if name == "digits":
        data = load_digits()
        labels = np.where(data.target[:, None] == np.arange(10)[None, :], 1.0, -1.0)
    else:
        data = load_breast_cancer()
        labels = np.where(data.target == 1, 1.0, -1.0)[:, None]
    x = data.data.astype(np.float64)
    std = x.std(0)
    x = (x - x.mean(0)) / np.where(std > 0, std, 1.0)  # constant pixels stay 0
    return np.hstack([x, np.ones((len(x), 1))]), labels


@dataclass
class LogisticProblem:
    """Samples (float64) and λ; methods evaluate f, its gradient and its minimiser."""

    x: torch.Tensor   # n × p, float64, last column 1
    y: torch.Tensor   # n × C, float64, ±1
    l2: float

    @property
    def shape(self) -> Tuple[int, int]:
        """(C, p): the shape of W."""
        return self.y.shape[1], self.x.shape[1]

    def loss(self, w: torch.Tensor) -> torch.Tensor:
        """f(W) in the dtype of ``w`` (differentiable; ``w`` of shape (C, p))."""
        x, y = self.x.to(w.dtype), self.y.to(w.dtype)
        margins = y * (x @ w.t())
        data_term = torch.logaddexp(torch.zeros_like(margins), -margins).sum(1).mean()
        return data_term + 0.5 * self.l2 * (w * w).sum()

    def objective(self, w: torch.Tensor) -> float:
        """f(W) in float64, whatever the dtype of ``w``."""
        with torch.no_grad():
            return float(self.loss(w.detach().double()))

    def gradient(self, w: torch.Tensor) -> torch.Tensor:
        """∇f(W) in float64."""
        w = w.detach().double()
        weights = -self.y * torch.sigmoid(-self.y * (self.x @ w.t()))
        return weights.t() @ self.x / len(self.x) + self.l2 * w

    def smoothness(self) -> float:
        """L = λ_max(XᵀX/n)/4 + λ, so that the step 1/L is safe for gradient descent."""
        return float(torch.linalg.eigvalsh(self.x.t() @ self.x / len(self.x)).max()) / 4 + self.l2

    def optimum(self, tol: float = 1e-12, max_iter: int = 100) -> Tuple[float, torch.Tensor]:
        """(f*, W*) by damped Newton, class by class (the classes do not interact).

        Raises:
            RuntimeError: the gradient did not fall below ``tol``.
        """
        w = torch.zeros(self.shape, dtype=torch.float64)
        for _ in range(max_iter):
            grad = self.gradient(w)
            if float(grad.abs().max()) < tol:
                return self.objective(w), w
            w = self._newton_step(w, grad)
        raise RuntimeError(f"Newton did not reach a gradient below {tol} in {max_iter} iterations")

    def _newton_step(self, w: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        prob = torch.sigmoid(self.y * (self.x @ w.t()))
        curvature = prob * (1 - prob) / len(self.x)
        eye = self.l2 * torch.eye(self.x.shape[1], dtype=torch.float64)
        step = torch.stack([torch.linalg.solve(self.x.t() @ (self.x * curvature[:, c:c + 1]) + eye, grad[c])
                            for c in range(w.shape[0])])
        f0, scale = self.objective(w), 1.0
        while self.objective(w - scale * step) > f0 and scale > 1e-8:  # backtracking keeps f decreasing
            scale /= 2
        return w - scale * step

    def shard(self, rank: int, size: int) -> "LogisticProblem":
        """Rank ``rank``'s block of samples; its ``loss`` is that rank's local objective."""
        per_rank = len(self.x) // size
        rows = slice(rank * per_rank, (rank + 1) * per_rank)
        return LogisticProblem(self.x[rows], self.y[rows], self.l2)


def load_problem(dataset: str, l2: float, ranks: int = 1, seed: int = 0) -> LogisticProblem:
    """The problem on ``dataset``, shuffled by ``seed`` and cut to a multiple of ``ranks``."""
    x, y = _features_and_labels(check_dataset(dataset))
    order = np.random.RandomState(seed).permutation(len(x))[: len(x) // ranks * ranks]
    return LogisticProblem(torch.from_numpy(x[order]), torch.from_numpy(y[order]), float(l2))
