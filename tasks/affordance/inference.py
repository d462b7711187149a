"""A trained affordance-map model: the instruction text bank, loading a checkpoint, predicting maps; no trainer
(re-annotation and the map stage's inference import this, not tasks.affordance.train)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from models.affordance_net import AffordanceNet, AffordanceNetConfig
from models.device import resolve_device
from models.text_encoder import TextEncoder
from schemas.ids import hash_file
from tasks.affordance.config import CHECKPOINT_FORMAT


class TextBank:
    """Token features of a fixed set of texts, encoded once. tokens: (T, L, 384); mask: (T, L) bool."""

    def __init__(self, texts: Sequence[str], encoder: TextEncoder) -> None:
        self.texts = list(dict.fromkeys(texts))
        if not self.texts:
            raise ValueError("TextBank needs at least one text")
        self.index = {text: i for i, text in enumerate(self.texts)}
        features = encoder.encode(self.texts)
        self.tokens, self.mask = features.tokens.float(), features.mask
        self.encoder_identity = encoder.identity

    def batch(self, ids: Sequence[int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L', 384), (B, L') for text ids, trimmed to the longest of the batch."""
        index = torch.as_tensor(list(ids), dtype=torch.long)
        mask = self.mask[index]
        length = int(mask.sum(1).max())
        return self.tokens[index, :length].to(device), mask[:, :length].to(device)


@dataclass
class MapModel:
    """A trained (or loaded) model and what identifies it."""

    model: AffordanceNet
    config: AffordanceNetConfig
    checkpoint: Path | None = None
    checkpoint_sha256: str = ""
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0


def load_map_model(path: str | Path, device: str = "auto") -> MapModel:
    """A checkpoint saved by `save_map_model`; ValueError naming the file when it is missing or not one."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path}: no such file")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: torch raises many kinds
        raise ValueError(f"checkpoint {path}: not a torch file ({exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {path}: not an affordance-map checkpoint (format "
                         f"{raw.get('format') if isinstance(raw, dict) else type(raw).__name__!r}, "
                         f"expected {CHECKPOINT_FORMAT!r})")
    config = AffordanceNetConfig(**raw["config"])
    model = AffordanceNet(config)
    try:
        model.load_state_dict(raw["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"checkpoint {path}: weights do not fit the saved config ({exc})") from None
    return MapModel(model=model.to(resolve_device(device)).eval(), config=config, checkpoint=path,
                    checkpoint_sha256=hash_file(path))


@torch.no_grad()
def predict_maps(model: AffordanceNet, points: np.ndarray, text_ids: Sequence[int], bank: TextBank,
                 batch_size: int = 32) -> np.ndarray:
    """points: (M, N, 3) metres, text_ids: M ids into `bank` -> (M, N) float32 probabilities v_i."""
    if len(points) != len(text_ids):
        raise ValueError(f"points ({len(points)}) and text_ids ({len(text_ids)}) differ in length")
    device = next(model.parameters()).device
    out = np.zeros(points.shape[:2], np.float32)
    for start in range(0, len(points), batch_size):
        stop = start + batch_size
        tokens, mask = bank.batch(text_ids[start:stop], device)
        logits = model(torch.from_numpy(np.ascontiguousarray(points[start:stop])).to(device), tokens, mask)
        out[start:stop] = torch.sigmoid(logits).float().cpu().numpy()
    return out

