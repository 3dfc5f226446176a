"""The frozen ResNet-50 trunk (torchvision, ``fc`` removed): RGB frames in, 2048-d features out.

``weights`` is ``'random'`` (seeded initialisation: no network needed, for tests and demos),
``'imagenet'`` (torchvision's IMAGENET1K_V2, downloaded on first use: needs a network) or the
path of a saved state dict.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstmfpga.foundation.errors import ArtifactError, ConfigError

FEATURE_DIM = 2048
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _state_dict_from_file(path: Path) -> dict:
    import torch

    if not path.is_file():
        raise ArtifactError(f"backbone weights {path} do not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip/torch errors: all mean "not a usable state dict"
        raise ArtifactError(f"backbone weights {path} cannot be read as a torch state dict: {exc}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ArtifactError(f"backbone weights {path} hold a {type(state).__name__}, not a state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _imagenet_state_dict() -> dict:
    from torchvision.models import ResNet50_Weights

    weights = ResNet50_Weights.IMAGENET1K_V2
    try:
        return weights.get_state_dict(progress=False)
    except OSError as exc:  # URLError is an OSError
        raise ConfigError(
            f"ImageNet weights for ResNet-50 must be downloaded from {weights.url} and this machine "
            f"cannot reach it ({exc}); download the file elsewhere and pass --backbone-weights PATH, "
            "or use --backbone-weights random") from None


def build_backbone(weights: str = "random", *, seed: int = 0):
    """The ResNet-50 trunk in eval mode, outputs ``[N, 2048]``.

    Raises
    ------
    ConfigError
        ``'imagenet'`` without a network connection.
    ArtifactError
        A weights file that is missing, unreadable, or not a ResNet-50 state dict.
    """
    import torch
    import torchvision

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = torchvision.models.resnet50(weights=None)
    if weights == "imagenet":
        model.load_state_dict(_imagenet_state_dict())
    elif weights != "random":
        path = Path(weights)
        state = {k: v for k, v in _state_dict_from_file(path).items() if not k.startswith("fc.")}
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # shape mismatches
            raise ArtifactError(f"backbone weights {path} do not fit ResNet-50: {str(exc).splitlines()[-1].strip()}") from None
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing or unexpected:
            raise ArtifactError(
                f"backbone weights {path} do not fit ResNet-50: missing {missing[:4]}{'...' if len(missing) > 4 else ''}, "
                f"unexpected {unexpected[:4]}{'...' if len(unexpected) > 4 else ''}")
    model.fc = torch.nn.Identity()
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def to_input(frames_uint8, device) -> "torch.Tensor":
    """uint8 ``[N, H, W, 3]`` (tensor or array) → normalised float ``[N, 3, H, W]`` on ``device``."""
    import torch

    frames = torch.as_tensor(np.asarray(frames_uint8) if not isinstance(frames_uint8, torch.Tensor) else frames_uint8)
    x = frames.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    return (x - mean) / std


class FrameEncoder:
    """Runs the backbone on batches of frames: bf16 autocast and channels_last on CUDA.

    Parameters
    ----------
    weights : str
        ``'random'``, ``'imagenet'`` or a state-dict path (see :func:`build_backbone`).
    device : str
        ``'cpu'`` or ``'cuda'``.
    seed : int
        Seed of the random initialisation.
    """

    def __init__(self, *, weights: str = "random", device: str = "cpu", seed: int = 0):
        import torch

        if device not in ("cpu", "cuda"):
            raise ConfigError(f"device must be 'cpu' or 'cuda', not {device!r}")
        if device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device 'cuda' was asked for but torch sees no CUDA device")
        self.device = torch.device(device)
        self.model = build_backbone(weights, seed=seed).to(self.device)
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)

    def __call__(self, frames_uint8) -> np.ndarray:
        """uint8 ``[N, H, W, 3]`` → float32 ``[N, 2048]``."""
        import torch

        x = to_input(frames_uint8, self.device)
        with torch.inference_mode():
            if self.device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    y = self.model(x)
            else:
                y = self.model(x)
        return y.float().cpu().numpy()
