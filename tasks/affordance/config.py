"""Affordance-map training settings (the model sizes are the preset registry's, models/affordance_net.py)."""

from __future__ import annotations

from dataclasses import dataclass

from models.affordance_net import PRESETS

CHECKPOINT_FORMAT = "affordance-net-v1"


@dataclass(frozen=True)
class MapTrainConfig:
    """Affordance-map training settings; every field bounded in __post_init__."""

    preset: str = PRESETS.default
    # 450 steps at 2.5e-3 (45 warm-up): held-out IoU above the demo's 0.65 floor in under a third of the time of
    # 1,500 steps at 1e-3 (BENCHMARKS.md block `demo_budgets`, with 600 steps beside it); 400 at 3e-3 fell below.
    steps: int = 450
    batch_size: int = 16
    lr: float = 2.5e-3
    weight_decay: float = 0.01
    warmup_steps: int = 45
    train_points: int = 1024  # points per cloud in a training batch (a random subset)
    focal_alpha: float = 0.5  # 0.5 weighs parts and background alike; measured against 0.25 in BENCHMARKS.md
    focal_gamma: float = 2.0
    scale_jitter: float = 0.1  # anisotropic scale in [1 - s, 1 + s]
    jitter_m: float = 0.0015
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        PRESETS.check(self.preset)
        for name, low in (("steps", 1), ("batch_size", 1), ("train_points", 32), ("warmup_steps", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)}")
        if not 0 < self.lr < 1:
            raise ValueError(f"lr must be in (0, 1), got {self.lr}")
        if not 0 <= self.focal_alpha <= 1 or self.focal_gamma < 0:
            raise ValueError(f"focal_alpha must be in [0, 1] and focal_gamma >= 0, got {self.focal_alpha}, "
                             f"{self.focal_gamma}")
        if not 0 <= self.scale_jitter < 1:
            raise ValueError(f"scale_jitter must be in [0, 1), got {self.scale_jitter}")

