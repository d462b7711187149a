"""Held-out evaluation of an affordance-map model: predicted maps against part labels, per item and instruction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.affordance_net import AffordanceNet
from tasks.affordance.data import Key, MapItems
from tasks.affordance.inference import TextBank, predict_maps
from tasks.affordance.metrics import SampleMetrics, sample_metrics


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

