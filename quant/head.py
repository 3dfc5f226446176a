"""The quantized LSTM head: feature standardisation → Brevitas QuantLSTM → QuantLinear classifier."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from brevitas.core.scaling import ParameterFromRuntimeStatsScaling
from brevitas.nn import QuantLinear, QuantLSTM
from brevitas.quant import Int32Bias
from brevitas.quant_tensor import IntQuantTensor
from torch import nn

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.validation import check_integer


@dataclass(frozen=True)
class QuantHeadConfig:
    """Shape and bit widths of a :class:`QuantLstmHead` (shared by QAT, export and the demo)."""

    input_size: int
    hidden_size: int
    num_layers: int = 1
    num_classes: int = 2
    weight_bits: int = 4
    act_bits: int = 8
    clip: float = 4.0

    def __post_init__(self):
        checks = (
            ("input_size", self.input_size, 1, None),
            ("hidden_size", self.hidden_size, 1, None),
            ("num_layers", self.num_layers, 1, 3),
            ("num_classes", self.num_classes, 0, None),
            ("weight_bits", self.weight_bits, 2, 8),
            ("act_bits", self.act_bits, 4, 8),
        )
        for name, value, lo, hi in checks:
            check_integer(name, value, low=lo, high=hi)
        if not (isinstance(self.clip, (int, float)) and self.clip > 0):
            raise ConfigError(f"clip must be a positive number, not {self.clip!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class QuantLstmHead(nn.Module):
    """Standardise features, run a unidirectional Brevitas QuantLSTM, classify the last step.

    x and h share the LSTM's io quantizer (Brevitas ties them), so raw ResNet features
    (non-negative, unbounded) must be standardised and clipped first or h loses most of its
    levels. ``mean``/``std`` are buffers: set them from the training split.
    """

    def __init__(self, config: QuantHeadConfig):
        super().__init__()
        self.config = config
        c = config
        self.register_buffer("feature_mean", torch.zeros(c.input_size))
        self.register_buffer("feature_std", torch.ones(c.input_size))
        self.lstm = QuantLSTM(
            c.input_size, c.hidden_size, num_layers=c.num_layers, batch_first=True,
            weight_bit_width=c.weight_bits, io_bit_width=c.act_bits,
            gate_acc_bit_width=c.act_bits, sigmoid_bit_width=c.act_bits,
            tanh_bit_width=c.act_bits, cell_state_bit_width=c.act_bits,
            return_quant_tensor=True)
        self.classifier = None
        if c.num_classes:
            self.classifier = QuantLinear(c.hidden_size, c.num_classes, bias=True,
                                          weight_bit_width=c.weight_bits, bias_quant=Int32Bias)

    def set_normalization(self, mean, std) -> None:
        mean = torch.as_tensor(mean, dtype=torch.float32)
        std = torch.as_tensor(std, dtype=torch.float32)
        if mean.shape != (self.config.input_size,) or std.shape != mean.shape:
            raise ConfigError(f"normalization needs mean/std of shape ({self.config.input_size},), "
                              f"got {tuple(mean.shape)} and {tuple(std.shape)}")
        if not torch.all(std > 0):
            raise ConfigError("normalization std must be positive")
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std)

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        clip = float(self.config.clip)
        return torch.clamp((x - self.feature_mean) / self.feature_std, -clip, clip)

    def forward_sequence(self, x: torch.Tensor):
        """Standardised features ``[B, T, I]`` → (hidden sequence IntQuantTensor, logits | None)."""
        out, _ = self.lstm(self.standardize(x))
        if self.classifier is None:
            return out, None
        last = IntQuantTensor(out.value[:, -1, :], out.scale, out.zero_point, out.bit_width,
                              out.signed_t, out.training_t)
        return out, self.classifier(last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, logits = self.forward_sequence(x)
        return out.value if logits is None else logits

    def statistics_state(self) -> dict:
        """What ``state_dict`` leaves out of the activation scalings that learn from statistics:
        per scaling, the statistics steps taken, the running statistics and the raw scale.

        ``state_dict`` ends statistics collection when loaded; a training run resumed mid-way
        restores this too, to continue exactly where it stopped.
        """
        return {name: {"counter": int(module.counter), "buffer": module.buffer.detach().clone(),
                       "value": module.value.detach().clone()}
                for name, module in self.named_modules() if isinstance(module, ParameterFromRuntimeStatsScaling)}

    def load_statistics_state(self, state: dict) -> None:
        """Restore :meth:`statistics_state`; before copying a state dict in, whose keys depend on it."""
        modules = dict(self.named_modules())
        with torch.no_grad():
            for name, saved in state.items():
                module = modules[name]
                module.counter = int(saved["counter"])
                module.buffer.copy_(saved["buffer"])
                module.value.copy_(saved["value"])

    def load_float_lstm(self, lstm: nn.LSTM) -> None:
        """Initialise from a trained float ``torch.nn.LSTM`` (batch_first, unidirectional)."""
        if lstm.bidirectional:
            raise ConfigError("a bidirectional LSTM cannot initialise the unidirectional FPGA head")
        if (lstm.input_size, lstm.hidden_size, lstm.num_layers) != (
                self.config.input_size, self.config.hidden_size, self.config.num_layers):
            raise ConfigError(f"float LSTM shape (I={lstm.input_size}, H={lstm.hidden_size}, "
                              f"L={lstm.num_layers}) does not match the head {self.config}")
        # Brevitas maps torch's weight_ih_l{k}/weight_hh_l{k}/bias_* names itself.
        self.lstm.load_state_dict(lstm.state_dict(), strict=False)
