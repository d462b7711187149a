"""A trained classifier: loading a saved checkpoint and predicting with it, without the trainer (pseudo-labelling,
re-annotation and grasp evaluation import this, not tasks.pseudo_label.classifier_train)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from models.device import resolve_device
from models.point_bert import PointBertConfig, PointTransformer
from models.point_bert_checkpoint import checkpoint_sha256, load_checkpoint
from tasks.pseudo_label.classifier_data import Clouds


@dataclass
class TrainResult:
    model: PointTransformer
    model_config: PointBertConfig
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    checkpoint: Path | None = None
    checkpoint_sha256: str = ""


@torch.no_grad()
def predict_logits(model: PointTransformer, points: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """(N, P, 3) clouds -> (N, C) float32 logits, in eval mode (deterministic for fixed weights)."""
    model.eval()
    device = next(model.parameters()).device
    out = [model(torch.from_numpy(points[i:i + batch_size]).to(device)).float().cpu()
           for i in range(0, len(points), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, model.config.cls_dim), np.float32)


def accuracy_of(model: PointTransformer, clouds: Clouds) -> float:
    if len(clouds) == 0:
        return float("nan")
    return float((predict_logits(model, clouds.points).argmax(1) == clouds.labels).mean())


def load_trained(path: str | Path, device: str = "auto") -> TrainResult:
    """A checkpoint saved by `train_classifier` as a TrainResult (no history); ValueError naming the file when it
    is missing or holds another architecture."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path}: no such file")
    model, model_config = load_checkpoint(path)
    return TrainResult(model=model.to(resolve_device(device)).eval(), model_config=model_config, checkpoint=path,
                       checkpoint_sha256=checkpoint_sha256(path))

