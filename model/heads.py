"""Float heads over standardized frame-feature sequences ``[B, T, D]`` → 2-class logits ``[B, 2]``.

Attribute names are part of the checkpoint contract that the QAT stage reads: a recurrent head
keeps its ``torch.nn.LSTM``/``GRU`` (``batch_first=True``) as ``rnn`` and its final
``torch.nn.Linear`` as ``classifier``, which sees the last layer's hidden state after the last
time step (for a BiLSTM: the forward state after the last step and the backward state after the
first, concatenated).
"""

from __future__ import annotations

import torch
from torch import nn

from lstmfpga.foundation.validation import check_integer
from lstmfpga.model.train_config import HEADS, canonical_choice

NUM_CLASSES = 2


def _check_positive(name: str, value) -> int:
    return check_integer(name, value, low=1, what="a positive integer", error=ValueError)


def _check_dropout(value) -> float:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"dropout must be in [0, 1), not {value!r}")
    return float(value)


class RecurrentHead(nn.Module):
    """LSTM, BiLSTM or GRU over the sequence, dropout, then a linear classifier.

    Parameters
    ----------
    kind : {'lstm', 'bilstm', 'gru'}
    input_size, hidden_size, num_layers : int
    dropout : float
        Between stacked layers and before the classifier.
    """

    def __init__(self, *, kind: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        if kind not in ("lstm", "bilstm", "gru"):
            raise ValueError(f"recurrent head kind must be 'lstm', 'bilstm' or 'gru', not {kind!r}")
        self.kind = kind
        _check_positive("input_size", input_size)
        _check_positive("hidden_size", hidden_size)
        _check_positive("num_layers", num_layers)
        dropout = _check_dropout(dropout)
        rnn_class = nn.GRU if kind == "gru" else nn.LSTM
        self.rnn = rnn_class(input_size, hidden_size, num_layers=num_layers, batch_first=True,
                             dropout=dropout if num_layers > 1 else 0.0, bidirectional=kind == "bilstm")
        self.dropout = nn.Dropout(dropout)
        directions = 2 if kind == "bilstm" else 1
        self.classifier = nn.Linear(directions * hidden_size, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, state = self.rnn(x)
        h_n = state[0] if isinstance(state, tuple) else state  # [layers * directions, B, H]
        if self.kind == "bilstm":
            last = torch.cat((h_n[-2], h_n[-1]), dim=-1)
        else:
            last = h_n[-1]
        return self.classifier(self.dropout(last))


class FrameAverageHead(nn.Module):
    """The baseline: mean over time, then a one-hidden-layer MLP; blind to frame order."""

    def __init__(self, *, input_size: int, hidden_size: int, dropout: float = 0.0):
        super().__init__()
        _check_positive("input_size", input_size)
        _check_positive("hidden_size", hidden_size)
        dropout = _check_dropout(dropout)
        self.mlp = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(input_size, hidden_size),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.classifier = nn.Linear(hidden_size, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.mlp(x.mean(dim=1)))


def build_head(head: str, *, input_size: int, hidden: int, layers: int = 1, dropout: float = 0.0) -> nn.Module:
    """The head named ``head`` (one of :data:`lstmfpga.model.train_config.HEADS`)."""
    head = canonical_choice("head", head, HEADS)
    if head == "frame-avg":
        return FrameAverageHead(input_size=input_size, hidden_size=hidden, dropout=dropout)
    return RecurrentHead(kind=head, input_size=input_size, hidden_size=hidden, num_layers=layers,
                         dropout=dropout)
