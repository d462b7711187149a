"""The trained modules in one container, and reading a saved checkpoint (no trainer needed: sampling and
evaluation import this, not tasks.grasp.train)."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from models.grasp_dam import DAM
from models.grasp_diffusion import GraspDiffusion
from models.hand_autoencoder import HandAutoencoder
from models.mano import ManoLayer
from tasks.grasp.config import CHECKPOINT_FORMAT, GraspModelConfig, GraspTrainConfig


class GraspModels(torch.nn.Module):
    """The three trained modules, plus the (constant) MANO layer they decode through."""

    def __init__(self, config: GraspModelConfig, mano: ManoLayer) -> None:
        super().__init__()
        self.config = config
        self.ae = HandAutoencoder(config.ae)
        self.diffusion = GraspDiffusion(config.diffusion)
        self.dam = DAM(config.dam)
        self.mano = mano

    def trained_state(self) -> dict[str, dict[str, Tensor]]:
        return {"ae": self.ae.state_dict(), "diffusion": self.diffusion.state_dict(), "dam": self.dam.state_dict()}

    def load_trained_state(self, state: dict[str, dict[str, Tensor]]) -> None:
        self.ae.load_state_dict(state["ae"])
        self.diffusion.load_state_dict(state["diffusion"])
        self.dam.load_state_dict(state["dam"])

    def stage_module(self, stage: str) -> torch.nn.Module:
        return {"autoencoder": self.ae, "diffusion": self.diffusion, "dam": self.dam}[stage]


def save_model(path: Path, models: GraspModels, config: GraspTrainConfig, meta: dict[str, Any]) -> None:
    """The weights and configs needed to sample (no optimiser), atomically."""
    atomic_save({"format": CHECKPOINT_FORMAT, "model_config": models.config.to_dict(), "train_config": asdict(config),
                  "state": models.trained_state(), "meta": meta}, path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A grasp-generator checkpoint as saved; ValueError naming the file when missing, unreadable or foreign."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path}: no such file")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=False)  # our own file: configs are plain dicts
    except Exception as exc:  # a truncated or foreign file: torch raises many kinds
        raise ValueError(f"checkpoint {path}: not a torch file ({exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {path}: not a grasp-generator checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    return raw


def atomic_save(payload: dict[str, Any], path: Path) -> None:
    """torch.save to a temporary file beside `path`, fsync, then rename over it: readers see old or new, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as handle:
        torch.save(payload, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
