"""The seed's three losses over 2-class logits: CrossEntropyLoss, MSE (softmax vs one-hot), FocalLoss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lstmfpga.model.train_config import LOSSES, canonical_choice


class MseOnSoftmax(nn.Module):
    """Mean squared error between the softmax probabilities and the one-hot target."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        one_hot = F.one_hot(target, num_classes=logits.shape[-1]).to(logits.dtype)
        return F.mse_loss(torch.softmax(logits, dim=-1), one_hot)


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017), ``mean((1 - p_t)^gamma * CE)``; gamma = 0 is cross-entropy."""

    def __init__(self, *, gamma: float = 2.0):
        super().__init__()
        if not gamma >= 0:
            raise ValueError(f"focal gamma must be >= 0, not {gamma!r}")
        self.gamma = float(gamma)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = torch.log_softmax(logits, dim=-1).gather(-1, target[:, None]).squeeze(-1)
        p_t = log_p.exp()
        return ((1.0 - p_t) ** self.gamma * -log_p).mean()


def make_loss(name: str, *, focal_gamma: float = 2.0) -> nn.Module:
    """The loss module of that name (see :data:`lstmfpga.model.train_config.LOSSES`)."""
    name = canonical_choice("loss", name, LOSSES)
    if name == "CrossEntropyLoss":
        return nn.CrossEntropyLoss()
    if name == "MSE":
        return MseOnSoftmax()
    return FocalLoss(gamma=focal_gamma)
