"""The evaluation run's outputs: the classifier to measure ACC with (the data root's current one), checks of the
run's settings, which grasps the grid shows, and the metrics JSON and Markdown report assembled from the parts."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict
from pathlib import Path

from models.point_bert_checkpoint import checkpoint_sha256
from schemas.data_root import DataRoot
from tasks.grasp.evaluation.contact import contact_ratio
from tasks.grasp.evaluation.evaluate import SIM_FAILED_DISPLACEMENT_CM, EvalReport, GeneratedGrasp
from tasks.grasp.evaluation.inputs import (
    EvalObjects,
)
from tasks.grasp.evaluation.report import SpeedRow, render_table5
from tasks.ingest.delta import load_classifier_state


def default_classifier(annotated_table: str | Path) -> Path | None:
    """The last self-training classifier of the data root holding `annotated_table` (<root>/tables/annotated),
    from <root>/current/classifier.json; None when there is none. ValueError when the checkpoint there is
    not the one the state recorded (sha256), as the reannotate flow checks."""
    state_file = DataRoot.of_table(annotated_table).current("classifier")
    if not state_file.is_file():
        return None
    state = load_classifier_state(state_file)
    if checkpoint_sha256(state.checkpoint) != state.checkpoint_sha256:
        raise ValueError(f"classifier {state.checkpoint}: not the checkpoint {state_file} recorded (sha256 differs)")
    return Path(state.checkpoint)


def grid_picks(grasps: list[GeneratedGrasp], objects: int, method: str = "model",
               only: set[tuple[str, str]] | None = None) -> list[int]:
    """Indices of the grasps to draw: `method`'s (the model's: its largest head count), of `objects` objects taken
    from the datasets in turn (object ids repeat across datasets, so an object is its (dataset, object_id)); `only`:
    just these objects (a baseline drawn for the objects of the model's grid)."""
    mine = [i for i, g in enumerate(grasps) if getattr(g, "method", "model") == method
            and (only is None or (g.dataset, g.object_id) in only)]
    if not mine:
        return []
    top = max(grasps[i].dam_heads for i in mine)
    picked = [i for i in mine if grasps[i].dam_heads == top]
    per_dataset: dict[str, list[tuple[str, str]]] = {}
    for key in dict.fromkeys((grasps[i].dataset, grasps[i].object_id) for i in picked):
        per_dataset.setdefault(key[0], []).append(key)
    turns = [key for row in itertools.zip_longest(*per_dataset.values()) for key in row if key is not None]
    keep = set(turns[:objects])
    return [i for i in picked if (grasps[i].dataset, grasps[i].object_id) in keep]


def check_evaluation_settings(checkpoints: dict[int, str], per_dataset: int, k: int, batch: int, tto_steps: int,
                              grid: int, guidance: float | None = None, ddim_steps: int | None = None) -> None:
    """ValueError naming the first bad parameter (guidance / ddim_steps None: the training config's)."""
    if not checkpoints:
        raise ValueError("checkpoints: give at least one {heads: checkpoint}")
    for heads, path in checkpoints.items():
        if heads not in (1, 2, 4):
            raise ValueError(f"checkpoints: heads {heads} is not 1, 2 or 4")
        if not Path(path).is_file():
            raise ValueError(f"checkpoints: {path} (heads {heads}): no such file")
    for name, value in (("objects_per_dataset", per_dataset), ("grasps_per_object", k), ("speed_batch", batch),
                        ("tto_steps", tto_steps), ("grid_objects", grid)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if guidance is not None and not (math.isfinite(guidance) and guidance >= 0):
        raise ValueError(f"guidance must be a finite number >= 0, got {guidance}")
    if ddim_steps is not None and ddim_steps < 1:
        raise ValueError(f"ddim_steps must be >= 1, got {ddim_steps}")


def plain(value: object) -> object:
    """JSON value: None -> 'n/a' (never a made-up number), non-finite floats -> 'failed'."""
    if value is None:
        return "n/a"
    if isinstance(value, float) and not math.isfinite(value):
        return "failed"
    return value


def by_affordance(grasps: list[GeneratedGrasp], report: EvalReport) -> list[dict]:
    """Contact ratio and mean simulation displacement (failed = 10 cm) per (method, DAM heads, requested
    affordance), datasets pooled, in first-seen order: which affordances a method holds and which it drops."""
    members: dict[tuple[str, int, str], list[int]] = {}
    for i, grasp in enumerate(grasps):
        members.setdefault((grasp.method, grasp.dam_heads, grasp.requested_affordance), []).append(i)
    rows = []
    for (method, heads, affordance), index in members.items():
        scores = [report.scores[i] for i in index]
        displacement = [s.sim.displacement_cm if s.sim.ok else SIM_FAILED_DISPLACEMENT_CM for s in scores]
        rows.append({"method": method, "dam_heads": heads, "affordance": affordance, "num_grasps": len(index),
                     "contact_ratio_percent": contact_ratio([s.in_contact for s in scores]),
                     "sim_displacement_cm": sum(displacement) / len(displacement)})
    return rows


def metrics_dict(report: EvalReport, speed: list[SpeedRow], objects: EvalObjects, generation_s: float,
                 classifier: Path | None, grasps: list[GeneratedGrasp] | None = None) -> dict:
    """Everything the report shows, as plain JSON: one entry per Table 9 row, the speed rows, throughput."""
    total_s = generation_s + sum(report.seconds.values())
    return {
        "table9": [{k: plain(v) for k, v in asdict(g).items()} for g in report.groups],
        "table5": [{k: plain(v) for k, v in asdict(r).items()} for r in speed],
        "grasps": len(report.scores),
        "objects": {"split": objects.split, "evaluated": len(objects.objects), "candidates": objects.candidates,
                    "without_mesh": objects.without_mesh},
        "seconds": {"generation": round(generation_s, 3), **{k: round(v, 3) for k, v in report.seconds.items()}},
        "grasps_per_s_end_to_end": round(len(report.scores) / max(total_s, 1e-9), 3),
        "grasps_per_s_metrics": round(report.grasps_per_second, 3),
        "classifier": str(classifier) if classifier else "n/a",
    } | ({"by_affordance": by_affordance(grasps, report)} if grasps is not None else {})


def sampling_sentence(sampling: dict | None) -> str:
    """' Sampling: DDIM 20 steps, guidance 2.0 (...).' or '' when the metrics do not say."""
    if not sampling:
        return ""
    return f" Sampling: DDIM {sampling['ddim_steps']} steps, guidance {sampling['guidance']} ({sampling['from']})."


def report_markdown(report: EvalReport, speed: list[SpeedRow], objects: EvalObjects, metrics: dict,
                    classifier: Path | None, png: Path) -> str:
    acc = (f"ACC: affordance predicted by `{classifier}` vs the requested one." if classifier else
           "ACC: n/a (no classifier: none given and no current/classifier.json).")
    seconds = ", ".join(f"{k} {v:.1f} s" for k, v in metrics["seconds"].items())
    left_out = [f"{method}: {obj} left out ({why})" for method, objs in metrics.get("baselines_left_out", {}).items()
                for obj, why in objs.items()]
    return "\n\n".join([
        "## Grasp generator evaluation",
        f"Objects: {objects.summary()}. {metrics['grasps']} grasps." + sampling_sentence(metrics.get("sampling")),
        "### Table 9: metrics per dataset and DAM head count", report.markdown,
        "Penetration volume from 5 mm voxels; displacement after a short PyBullet drop (mean ± std over the "
        "simulations that ran); contact within 5 mm; entropy and cluster size from k-means (k = 20). " + acc
        + ("".join(f"\n- {line}" for line in left_out)),
        "### Table 5: inference speed (seconds per grasp)", render_table5(speed),
        f"Throughput: {metrics['grasps_per_s_end_to_end']:.2f} grasps/s end to end (generation + every metric, "
        f"simulation included); {metrics['grasps_per_s_metrics']:.2f} grasps/s for the metrics alone. "
        f"Stages: {seconds}.",
        f"Generated grasps: `{png.absolute()}`."
        + (f" The same objects' ground-truth grasps: `{metrics['ground_truth_grid']}`."
           if metrics.get("ground_truth_grid") else ""),
    ])

