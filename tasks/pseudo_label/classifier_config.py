"""Classifier training settings (the model sizes are the preset registry's, models/point_bert.py)."""

from __future__ import annotations

from dataclasses import dataclass

from models.point_bert import (
    PRESETS,
)


@dataclass(frozen=True)
class TrainConfig:
    """Classifier training settings; every field bounded in __post_init__."""

    preset: str = PRESETS.default
    epochs: int = 50
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    jitter: float = 0.01  # network units (x 0.15 m): ~1.5 mm
    rotate: bool = False  # random rotation about z in training (off: see the module docstring)
    label_smoothing: float = 0.1
    balance: bool = True  # weight the loss by inverse class frequency, so rare classes count as much
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        PRESETS.check(self.preset)
        for name, low in (("epochs", 1), ("batch_size", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)}")
        if not 0 < self.lr < 1:
            raise ValueError(f"lr must be in (0, 1), got {self.lr}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")

