"""Training and inference of the Point-BERT affordance classifier on joint hand+object clouds.

Class-weighted cross-entropy with label smoothing over the 9 classes; AdamW with cosine decay; Gaussian jitter;
the weights of the epoch with the best validation accuracy are kept and saved under a name carrying their sha256.

Defaults measured on 384 synthetic AffordPose grasps (4 objects per category, 3 grasps per part; 268 train /
58 val / 58 test, CPU preset, 100 epochs; BENCHMARKS.md):
- no rotation augmentation: the clouds are in the object's canonical frame, so the hand's bearing around the
  object (the side a mug's handle is on) carries the class. A random rotation about z hid it: test 91.4 % with,
  100 % without;
- label smoothing 0.1: the wrong-class logits bunch together, which is what the logit z-score rule reads; with
  it that rule accepted 98 % of the held-out samples at k = 3 (at 100 % precision);
- class weights n / (K n_c): pull (24 grasps) and lever (12) are rare next to lift or wrap-grasp (72). On the
  demo's 383 grasps with another split and initialisation (seed 1, 50 epochs), test accuracy was 91.4 % without
  the weights (pull taken for lift) and 98.3 % with them. They are capped at MAX_CLASS_WEIGHT: in a
  self-training cycle the merged pseudo-labels bring thousands of samples, and a class that only a reviewer's
  relabel put there (one `pull` among 4,969 on the generator set) weighed 4969 / (7 x 1) = 710, so the loss chased
  that one sample, the warm-started model predicted it everywhere and train and val accuracy fell to 0.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.device import resolve_device
from models.point_bert import PRESETS, PointBertConfig, PointTransformer
from models.point_bert_checkpoint import save_checkpoint
from tasks.pseudo_label.classifier_config import TrainConfig
from tasks.pseudo_label.classifier_data import Clouds
from tasks.pseudo_label.classifier_model import TrainResult, accuracy_of


def _augment(points: torch.Tensor, jitter: float, generator: torch.Generator, rotate: bool = True) -> torch.Tensor:
    """Random rotation about z (when `rotate`) and Gaussian jitter. points: (B, P, 3)."""
    angle = torch.rand(points.shape[0], generator=generator) * 2 * math.pi * rotate
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero, one = torch.zeros_like(angle), torch.ones_like(angle)
    rotation = torch.stack([cos, -sin, zero, sin, cos, zero, zero, zero, one], 1).view(-1, 3, 3)
    noise = torch.randn(points.shape, generator=generator) * jitter
    return points @ rotation.transpose(1, 2) + noise


MAX_CLASS_WEIGHT = 10.0  # see the module docstring: a handful of samples must not outweigh the rest


def _class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """(C,) float32 weights n / (K * n_c) for the K classes present (each class's samples weigh as much in total),
    at most MAX_CLASS_WEIGHT; absent classes get weight 1 (they never occur as a target)."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.ones(num_classes)
    weights[present] = np.minimum(counts.sum() / (present.sum() * counts[present]), MAX_CLASS_WEIGHT)
    return torch.tensor(weights, dtype=torch.float32)


def train_classifier(train: Clouds, val: Clouds, config: TrainConfig, out_dir: str | Path,
                     progress: Callable[[dict[str, float]], None] | None = None,
                     initial: PointTransformer | None = None) -> TrainResult:
    """Train on `train`, keep the epoch best on `val`, save it as out_dir/point_bert-<sha12>.pt. `initial`: start
    from these weights (a previous self-training cycle's model) instead of a fresh initialisation."""
    model_config = PRESETS[config.preset]
    if train.points.shape[1] != model_config.num_points:
        raise ValueError(f"clouds have {train.points.shape[1]} points but preset {config.preset!r} takes "
                         f"{model_config.num_points}")
    if len(train) == 0 or (train.labels < 0).any():
        raise ValueError("train clouds must be non-empty and all labelled")
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    device = resolve_device(config.device)
    model = PointTransformer(model_config)
    if initial is not None:
        if initial.config != model_config:
            raise ValueError(f"initial model is {initial.config}, but preset {config.preset!r} is {model_config}")
        model.load_state_dict(initial.state_dict())
    model = model.to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * math.ceil(len(train) / config.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps)
    loss_fn = nn.CrossEntropyLoss(weight=_class_weights(train.labels, model_config.cls_dim) if config.balance else None,
                                  label_smoothing=config.label_smoothing)
    points, labels = torch.from_numpy(train.points), torch.from_numpy(train.labels)
    result = TrainResult(model=model, model_config=model_config)
    best = (-1.0, None)
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        total, correct, loss_sum = 0, 0, 0.0
        for start in range(0, len(order), config.batch_size):
            index = order[start:start + config.batch_size]
            if len(index) < 2:  # BatchNorm needs two samples
                continue
            batch = _augment(points[index], config.jitter, generator, config.rotate).to(device)
            logits = model(batch)
            loss = loss_fn(logits, labels[index].to(device))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += len(index)
            correct += int((logits.argmax(1).cpu() == labels[index]).sum())
            loss_sum += loss.item() * len(index)
        record = {"epoch": epoch, "train_loss": loss_sum / max(total, 1), "train_acc": correct / max(total, 1),
                  "val_acc": accuracy_of(model, val)}
        result.history.append(record)
        if progress:
            progress(record)
        # Ties go to the later epoch: with ~60 validation samples accuracy plateaus early, and the later weights
        # have trained longer. With no validation samples (val_acc NaN) the last epoch is kept.
        if math.isnan(record["val_acc"]) or record["val_acc"] >= best[0]:
            best = (record["val_acc"], {k: v.detach().clone() for k, v in model.state_dict().items()})
            result.best_epoch = epoch
    model.load_state_dict(best[1])
    model.eval()
    result.checkpoint, result.checkpoint_sha256 = _save_named(model, model_config, Path(out_dir))
    return result


def _save_named(model: PointTransformer, model_config: PointBertConfig, out_dir: Path) -> tuple[Path, str]:
    """Save, then rename to point_bert-<first 12 hex of the file's sha256>.pt (content-addressed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / ".point_bert.tmp.pt"
    digest = save_checkpoint(model, model_config, tmp)
    final = out_dir / f"point_bert-{digest[:12]}.pt"
    shutil.move(tmp, final)
    return final, digest


