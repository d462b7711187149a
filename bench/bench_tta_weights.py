"""The test-time-optimisation baseline's objective weights, compared on the val objects (never the test ones).

    python -m bench.bench_tta_weights --data-root afford-data/generator
    afford report docs/results/tta_weights --update BENCHMARKS.md

The `small` model trained by `python -m bench.bench_generator` samples `--grasps` grasps for each val (object,
affordance) pair once; each weight setting then refines the same grasps for `--steps` Adam steps
(tasks/grasp/evaluation/speed.py refine_grasps) and the refined grasps are scored like Table 9 (contact within
5 mm, simulation displacement, penetration depth). The first row is the model's grasps unrefined: the start every
setting works from.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.val_model_args import add_val_model_arguments, val_checkpoint

# name -> (hand-centric contact, affordance-map contact, penetration) weights; TTO_WEIGHTS is one of them
SETTINGS = {
    "affordance map + penetration (DAM weights)": (0.0, 0.1, 0.1),
    "hand contact 1": (1.0, 0.1, 0.1),
    "hand contact 3": (3.0, 0.1, 0.1),
    "hand contact 1, penetration 0.3": (1.0, 0.1, 0.3),
}


def parse_setting(spec: str) -> tuple[str, tuple[float, float, float]]:
    """'a,b,c' -> (name, (a, b, c)); ValueError naming the entry."""
    parts = spec.split(",")
    try:
        weights = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f"--weights {spec!r}: expected HAND,MAP,PENETRATION numbers") from None
    if len(weights) != 3 or min(weights) < 0:
        raise ValueError(f"--weights {spec!r}: expected three weights >= 0")
    return f"hand {weights[0]:g}, map {weights[1]:g}, penetration {weights[2]:g}", weights  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_val_model_arguments(parser, "tta_weights")
    parser.add_argument("--weights", action="append", default=[], metavar="HAND,MAP,PENETRATION",
                        help="a setting to compare (repeatable); default: the built-in list")
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    try:
        settings = dict(parse_setting(s) for s in args.weights) or SETTINGS
    except ValueError as exc:
        parser.error(str(exc))
    from bench.record import bench_table, finish, load_text, started

    header = started("tta_weights", seed=args.seed)
    import numpy as np

    from schemas.data_root import DataRoot
    from tasks.grasp.data import sentence_embedder
    from tasks.grasp.evaluation.evaluate import GeneratedGrasp, evaluate_grasps
    from tasks.grasp.evaluation.inputs import object_grasps, sampler_inputs, select_objects
    from tasks.grasp.evaluation.simulation import sim_pool
    from tasks.grasp.evaluation.speed import TTO_WEIGHTS, TTOWeights, refine_grasps
    from tasks.grasp.sample import load_grasp_generator, sample_grasps

    root = DataRoot(args.data_root)
    checkpoint = val_checkpoint(parser, args)
    generator = load_grasp_generator(checkpoint, "cpu")
    objects = select_objects(root.tables / "annotated", root.tables, args.objects, "val", by_affordance=True)
    print(objects.summary(), flush=True)
    embed = sentence_embedder()
    texts = list(dict.fromkeys(o.instruction for o in objects.objects))
    embeddings = dict(zip(texts, np.asarray(embed(texts), np.float32), strict=True))
    starts = []
    for i, obj in enumerate(objects.objects):
        points, values = sampler_inputs(obj, generator.train_config.num_points, args.seed)
        grasps = sample_grasps(generator, points, values, embeddings[obj.instruction], args.grasps, seed=args.seed + i)
        starts.append((obj, points, values, grasps.mano))

    def as_grasps(method: str, manos: list[np.ndarray]) -> list[GeneratedGrasp]:
        return [g for (obj, *_), mano in zip(starts, manos, strict=True)
                for g in object_grasps(generator, obj, mano, method=method)]

    rows = []
    with sim_pool(args.workers) as pool:
        runs = {"model (no refinement)": (None, [m for *_, m in starts], 0.0)}
        for name, weights in settings.items():
            began = time.perf_counter()
            refined = [refine_grasps(generator, mano, points, values, args.steps, weights=TTOWeights(*weights)).mano
                       for _, points, values, mano in starts]
            runs[name] = (weights, refined, time.perf_counter() - began)
        for name, (weights, manos, seconds) in runs.items():
            grasps = as_grasps("model" if weights is None else "tta", manos)
            report = evaluate_grasps(grasps, workers=args.workers, seed=args.seed, pool=pool)
            scores = report.scores
            row = [name, *(weights or ("", "", "")), len(scores),
                   100.0 * float(np.mean([s.in_contact for s in scores])),
                   float(np.mean([s.sim.displacement_cm if s.sim.ok else 10.0 for s in scores])),
                   float(np.mean([s.penetration_depth_cm for s in scores])),
                   float(np.mean([s.contact_distance_cm for s in scores])), seconds / max(len(scores), 1)]
            print(row, flush=True)
            rows.append(row)
    chosen = next((n for n, w in settings.items() if tuple(w) == tuple(TTO_WEIGHTS)), None)
    text = [f"Checkpoint `{checkpoint}`; {objects.summary()}; {args.grasps} grasps per pair; {args.steps} Adam "
            f"steps at the default learning rate; simulation on {args.workers} processes; {load_text()}.",
            f"At this run's code, the default weights (tasks/grasp/evaluation/speed.py TTO_WEIGHTS = "
            f"{tuple(TTO_WEIGHTS)}) are " + (f"the row `{chosen}`." if chosen else "not among the rows compared.")]
    table = bench_table(["setting", "hand contact", "affordance map", "penetration", "grasps", "contact %",
                         "simulation displacement cm", "penetration depth cm", "distance to object cm",
                         "refinement s / grasp"], rows,
                        ["", "", "", "", "d", ".1f", ".2f", ".2f", ".2f", ".3f"])
    finish(header, "tta_weights", "Test-time optimisation: weights compared on val objects", text, [table],
           out=args.results)


if __name__ == "__main__":
    main()
