"""Choose the torch device once, at the entry point; below it, device comes from the inputs."""

from __future__ import annotations

import warnings

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA when present, else CPU; 'cuda[:N]' falls back to CPU with a warning when absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(f"device {name!r} requested but CUDA is not available; using the CPU", stacklevel=2)
        return torch.device("cpu")
    return device
