"""Train, save, load and run the affordance-map model.

Training draws batches of items at random (step-based, not epochs: the demo has ~900 items, a real AffordPose
export far more). Each draw takes one of the key's instruction texts, `train_points` of the cloud's points (a
random subset: half the compute at 1024 of 2048, and a different subset every time), a random anisotropic scale
of +-10 % and ~1.5 mm jitter. Evaluation and inference use every point. Text features come from the frozen
all-MiniLM-L6-v2, computed once per distinct text (`TextBank`), never per step.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from models.affordance_loss import affordance_loss
from models.affordance_net import PRESETS, AffordanceNet
from models.device import resolve_device
from schemas.ids import hash_file
from tasks.affordance.config import CHECKPOINT_FORMAT, MapTrainConfig
from tasks.affordance.data import Key, MapItems, NoMapItems
from tasks.affordance.inference import MapModel, TextBank


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
    digest = hash_file(tmp)
    final = out / f"affordance_net-{digest[:12]}.pt"
    shutil.move(tmp, final)
    return final, digest


