"""Small models for the training job."""
import torch
from torch import nn


def digits_mlp(hidden: int = 128, seed: int = 0) -> nn.Module:
    """A two-hidden-layer perceptron for 8×8 digits (17,226 parameters at ``hidden=128``), seeded."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden // 2), nn.ReLU(),
                         nn.Linear(hidden // 2, 10))


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of correct predictions."""
    model.eval()
    correct = (model(x).argmax(dim=1) == y).float().mean().item()
    model.train()
    return correct
