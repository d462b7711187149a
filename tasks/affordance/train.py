"""Train, save, load and run the affordance-map model.

Training draws batches of items at random (step-based, not epochs: the demo has ~900 items, a real AffordPose
export far more). Each draw takes one of the key's instruction texts, `train_points` of the cloud's points (a
random subset: half the compute at 1024 of 2048, and a different subset every time), a random anisotropic scale
of +-10 % and ~1.5 mm jitter. Evaluation and inference use every point. Text features come from the frozen
all-MiniLM-L6-v2, computed once per distinct text (`TextBank`), never per step.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from models.affordance_loss import affordance_loss
from models.affordance_net import PRESETS, AffordanceNet, AffordanceNetConfig
from models.device import resolve_device
from models.text_encoder import TextEncoder
from tasks.affordance.data import Key, MapItems, NoMapItems
from tasks.affordance.metrics import SampleMetrics, sample_metrics

CHECKPOINT_FORMAT = "affordance-net-v1"


@dataclass(frozen=True)
class MapTrainConfig:
    """Affordance-map training settings; every field bounded in __post_init__."""

    preset: str = PRESETS.default
    steps: int = 1500
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
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


def _augment(points: torch.Tensor, config: MapTrainConfig,
             generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """points: (B, N, 3) -> (a random subset of train_points per cloud, scaled per axis and jittered: (B, K, 3);
    the subset indices: (B, K))."""
    batch, n, _ = points.shape
    keep = min(config.train_points, n)
    order = torch.rand(batch, n, generator=generator).argsort(dim=1)[:, :keep]  # (B, keep)
    subset = torch.gather(points, 1, order[..., None].expand(-1, -1, 3))
    scale = 1 + (torch.rand(batch, 1, 3, generator=generator) * 2 - 1) * config.scale_jitter
    return subset * scale + torch.randn(subset.shape, generator=generator) * config.jitter_m, order


def train_map_model(items: MapItems, texts: dict[Key, list[str]], bank: TextBank, config: MapTrainConfig,
                    out_dir: str | Path, progress: Callable[[dict[str, float]], None] | None = None,
                    log_every: int = 50) -> MapModel:
    """Train on `items` (each item's texts from `texts[(class, affordance)]`); save as
    out_dir/affordance_net-<sha12>.pt and return the model in eval mode."""
    if len(items) == 0:
        raise NoMapItems("no training items: the labelled table has no sample with per-point affordance labels")
    missing = sorted({key for key in items.item_keys() if not texts.get(key)})
    if missing:
        raise ValueError(f"no instruction text for keys {missing[:5]}")
    model_config = PRESETS[config.preset]
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    device = resolve_device(config.device)
    model = AffordanceNet(model_config).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, _warmup_cosine(config.warmup_steps, config.steps))
    points, targets = torch.from_numpy(items.points), torch.from_numpy(items.targets)
    choices = [[bank.index[t] for t in texts[key]] for key in items.item_keys()]
    result = MapModel(model=model, config=model_config)
    start, running = time.perf_counter(), []
    model.train()
    for step in range(1, config.steps + 1):
        index = torch.randint(len(items), (config.batch_size,), generator=generator)
        text_ids = [choices[i][int(torch.randint(len(choices[i]), (1,), generator=generator))] for i in index]
        batch, order = _augment(points[index], config, generator)
        target = torch.gather(targets[index], 1, order)
        tokens, mask = bank.batch(text_ids, device)
        loss = affordance_loss(model(batch.to(device), tokens, mask), target.to(device),
                               config.focal_alpha, config.focal_gamma)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        running.append(loss.item())
        if step % log_every == 0 or step == config.steps:
            record = {"step": step, "loss": float(np.mean(running)), "lr": schedule.get_last_lr()[0],
                      "elapsed_s": time.perf_counter() - start}
            result.history.append(record)
            running = []
            if progress:
                progress(record)
    model.eval()
    result.train_seconds = time.perf_counter() - start
    result.checkpoint, result.checkpoint_sha256 = save_map_model(model, config, bank.encoder_identity, out_dir)
    return result


def _warmup_cosine(warmup: int, total: int) -> Callable[[int], float]:
    """lr factor: linear from 0 to 1 over `warmup` steps, then cosine down to 0.05 at `total`."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return factor


def save_map_model(model: AffordanceNet, train_config: MapTrainConfig, text_encoder: str,
                   out_dir: str | Path) -> tuple[Path, str]:
    """Save, then rename to affordance_net-<first 12 hex of the file's sha256>.pt (content-addressed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".affordance_net.tmp.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "config": asdict(model.config), "train_config": asdict(train_config),
                "text_encoder": text_encoder, "state_dict": model.state_dict()}, tmp)
    digest = _sha256(tmp)
    final = out / f"affordance_net-{digest[:12]}.pt"
    shutil.move(tmp, final)
    return final, digest


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
                    checkpoint_sha256=_sha256(path))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


@dataclass
class Evaluation:
    """Per evaluated (item, text): its metrics and grouping keys."""

    metrics: list[SampleMetrics]
    categories: list[str]
    affordances: list[str]
    texts: list[str]
    item_index: list[int]
    maps: np.ndarray  # (E, N) float32 predictions, E = len(metrics)


def evaluate_maps(model: AffordanceNet, items: MapItems, texts: dict[Key, list[str]], bank: TextBank,
                  batch_size: int = 32) -> Evaluation:
    """Every item with every text of its key, on all of its points."""
    pairs = [(i, text) for i, key in enumerate(items.item_keys()) for text in texts[key]]
    index = [i for i, _ in pairs]
    maps = predict_maps(model, items.points[index], [bank.index[t] for _, t in pairs], bank, batch_size)
    metrics = [sample_metrics(maps[j], items.targets[i]) for j, i in enumerate(index)]
    return Evaluation(metrics, [items.categories[i] for i in index], [items.affordances[i] for i in index],
                      [t for _, t in pairs], index, maps)
