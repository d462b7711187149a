"""The affordance stage's steps after training: evaluation tables, inference onto the target datasets, figures.

Evaluation reports the metrics overall, per object class (layout of the AffordGrasp supplementary's Table 7)
and per action (Table 8). Inference predicts, for every target sample that has an instruction, the map over
that sample's own object points. The figure shows one held-out object under three instructions: two that name
affordances its parts carry and one that does not fit it, with the measured share of the map on each region.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from schemas.affordance_map import AffordanceMapRow
from schemas.instruction import InstructionRow
from schemas.rows import Reject, Sample
from tasks.affordance.data import Key, MapItems
from tasks.affordance.evaluation import Evaluation
from tasks.affordance.figures import map_change, render_maps
from tasks.affordance.inference import TextBank, predict_maps
from tasks.affordance.metrics import METRICS, grouped, metrics_table, overall_table, summarise
from tasks.instruct.generators import InstructionKey, TemplateGenerator

STAGE_VERSION = "affordance-v1"


def evaluation_report(evaluation: Evaluation) -> tuple[str, dict]:
    """Markdown (overall, per class, per action) and the same numbers as a dict for metrics.json."""
    overall = summarise(evaluation.metrics)
    if not evaluation.metrics:  # every class had a single object, so all of them trained
        return ("No held-out objects to evaluate on: a class needs at least two objects for one to be held out.",
                {"overall": _plain(overall), "per_class": {}, "per_action": {}})
    per_class = grouped(evaluation.metrics, evaluation.categories)
    per_action = grouped(evaluation.metrics, evaluation.affordances)
    markdown = "\n\n".join([
        "### Overall", overall_table(overall),
        "### Per object class (layout of Table 7)", metrics_table(per_class),
        "### Per action (layout of Table 8)", metrics_table(per_action, overall=overall)])
    as_dict = {"overall": _plain(overall), "per_class": {k: _plain(v) for k, v in per_class.items()},
               "per_action": {k: _plain(v) for k, v in per_action.items()}}
    return markdown, as_dict


def _plain(summary) -> dict:
    return {"n": summary.n, **{m: summary.values[m] for m in METRICS}, "counts": summary.counts}


@dataclass
class InferInput:
    sample_id: str
    dataset: str
    object_class: str
    affordance: str
    instruction: str
    points: np.ndarray  # (N, 3) float32 metres


def pair_inputs(samples: Iterable[Sample], instructions: Mapping[str, InstructionRow], source: str | Path,
                rejects: list[Reject]) -> tuple[list[InferInput], int]:
    """`samples` (read from `source`) paired with their instruction; (inputs, samples without an instruction)."""
    inputs, unlabelled = [], 0
    for sample in samples:
        row = instructions.get(sample.sample_id)
        if row is None:
            unlabelled += 1
            continue
        points = np.asarray(sample.object_points, np.float32)
        if points.ndim != 2 or points.shape[1] != 3 or len(points) < 64 or not np.isfinite(points).all():
            rejects.append(Reject(sample_id=sample.sample_id, stage_version=STAGE_VERSION, stage="affordance",
                                  source=str(source), field="object_points", dataset=sample.dataset,
                                  reason=f"object_points: need (N >= 64, 3) finite points, got {points.shape}"))
            continue
        inputs.append(InferInput(sample.sample_id, sample.dataset, row.object_class, row.affordance,
                                 row.instruction, points))
    return inputs, unlabelled


def infer_rows(model, inputs: list[InferInput], bank: TextBank, checkpoint_sha256: str,
               batch_size: int = 32, progress: Callable[[int, int], None] | None = None
               ) -> tuple[list[AffordanceMapRow], float]:
    """Maps for the inputs (batched by equal point counts); returns the rows and the seconds spent predicting."""
    rows: list[AffordanceMapRow] = []
    seconds = 0.0
    by_size: dict[int, list[InferInput]] = {}
    for item in inputs:
        by_size.setdefault(len(item.points), []).append(item)
    done = 0
    for group in by_size.values():
        for start in range(0, len(group), batch_size):
            chunk = group[start:start + batch_size]
            began = time.perf_counter()
            maps = predict_maps(model, np.stack([i.points for i in chunk]), [bank.index[i.instruction] for i in chunk],
                                bank, batch_size)
            seconds += time.perf_counter() - began
            rows += [AffordanceMapRow(sample_id=i.sample_id, stage_version=STAGE_VERSION, dataset=i.dataset,
                                      object_class=i.object_class, affordance=i.affordance,
                                      instruction=i.instruction, probabilities=m,
                                      checkpoint_sha256=checkpoint_sha256, text_encoder=bank.encoder_identity)
                     for i, m in zip(chunk, maps, strict=True)]
            done += len(chunk)
            if progress:
                progress(done, len(inputs))
    return rows, seconds


def wrong_instruction(category: str, carried: set[str]) -> tuple[str, str]:
    """(affordance, instruction) for an action the object's parts do not carry: the first of twist, press,
    lever, pull, support not in `carried`, worded by the template generator for this object."""
    affordance = next(a for a in ("twist", "press", "lever", "pull", "support", "lift") if a not in carried)
    return affordance, TemplateGenerator().text(InstructionKey(category, affordance), 0)


def figure_for_object(model, items: MapItems, texts: dict[Key, list[str]], make_bank: Callable[[list[str]], TextBank],
                      path: Path, held_out: bool = True) -> tuple[Path, str] | None:
    """Render one held-out object under three instructions (two fitting, one wrong) and say, measured, how the
    map moves. None when no item set has an object with two affordances."""
    by_sample: dict[str, list[int]] = {}
    for i, sample_id in enumerate(items.sample_ids):
        by_sample.setdefault(sample_id, []).append(i)
    candidates = [idx for idx in by_sample.values() if len(idx) >= 2]
    if not candidates:
        return None

    # A mug first (the reference's Fig. 10 object), then the object whose two largest regions are largest: a
    # region of a few points says little about where the map goes.
    def rank(idx: list[int]) -> tuple[bool, float]:
        sizes = sorted((float(items.targets[i].sum()) for i in idx), reverse=True)
        return items.categories[idx[0]] == "mug", sizes[1]

    chosen = sorted(max(candidates, key=rank), key=lambda i: -float(items.targets[i].sum()))
    first, second = chosen[:2]
    category = items.categories[first]
    carried = {items.affordances[i] for i in chosen}
    wrong_affordance, wrong_text = wrong_instruction(category, carried)
    instructions = [texts[(category, items.affordances[first])][0], texts[(category, items.affordances[second])][0],
                    wrong_text]
    bank = make_bank(instructions)
    points = items.points[first]
    seen = "held out of training" if held_out else "seen in training (no object was held out)"
    maps = predict_maps(model, np.stack([points] * 3), [bank.index[t] for t in instructions], bank)
    render_maps(points, list(maps), [f"{t} ({a})" for t, a in zip(
        instructions, [items.affordances[first], items.affordances[second], f"wrong: {wrong_affordance}"],
        strict=True)], path, suptitle=f"{items.object_ids[first]} ({category}), {seen}")
    regions = [items.targets[first] > 0.5, items.targets[second] > 0.5]
    lines = []
    for r, region in enumerate(regions):
        change = map_change(region, list(maps))
        lines.append(f"- {items.affordances[chosen[r]]} region ({int(region.sum())} of {len(region)} points): "
                     "share of the map's mass " + ", ".join(f"{c['mass_inside']:.2f}" for c in change)
                     + "; mean v inside " + ", ".join(f"{c['mean_inside']:.2f}" for c in change)
                     + " (instructions 1, 2, 3)")
    means = [float(m.mean()) for m in maps]
    lines.append("- mean v over the object: " + ", ".join(f"{m:.3f}" for m in means)
                 + f"; the wrong instruction ({wrong_affordance}) " + (
                     f"lowers it to {means[2] / max(means[:2]):.0%} of the larger fitting one."
                     if means[2] < max(means[:2]) else "does not lower it."))
    statement = (f"Object `{items.object_ids[first]}` ({category}), {seen}. Instructions: "
                 + "; ".join(f"({n}) {t}" for n, t in enumerate(instructions, start=1)) + ".\n\n" + "\n".join(lines))
    return path, statement


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)
