"""Grasp evaluation throughput: grasps per second per metric and overall, simulation included.

    python -m bench.bench_grasp_eval --per-category 1 --per-part 1 --workers 2
    afford report docs/results/grasp_eval --update BENCHMARKS.md

Grasps are the synthetic datasets' own (tasks/synth/grasps.py on tasks/synth/objects.py objects), the stand-in
for generator output until the generator lands; making them is not timed. Per-object work (voxelising, surface
sampling, V-HACD) is reported per object: it is paid once however many grasps an object gets. The classifier is
the CPU preset with fresh weights (throughput does not depend on what it learned). The overall figure runs
`evaluate_grasps` in a warm simulation pool (a cold pool adds a few seconds: its workers import the main module).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a file: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _rate(count: int, seconds: float) -> dict:
    return {"count": count, "seconds": round(seconds, 3), "per_s": round(count / max(seconds, 1e-9), 2)}


def _timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def make_grasps(per_category: int, per_part: int, seed: int) -> list:
    import torch  # noqa: F401  (ManoLayer)

    from models.mano import ManoLayer
    from models.synthetic_hand import build_synthetic_hand
    from tasks.synth.generated_grasps import from_synth_grasps
    from tasks.synth.grasps import synthesize_grasps
    from tasks.synth.objects import make_objects

    params = build_synthetic_hand("right")
    layer = ManoLayer(params=params, use_pca=False)
    rng = np.random.default_rng(seed)
    grasps = []
    for obj in make_objects(per_category, seed):
        synth = synthesize_grasps(obj, params, layer, per_part=per_part, rng=rng, steps=60)
        grasps += from_synth_grasps(obj, synth, layer, dataset="synthetic", dam_heads=1)
    return grasps


def per_metric(grasps: list, workers: int, pool) -> dict:
    from models.point_bert import PRESETS, PointTransformer
    from ops.hand_mesh import closed_hand
    from ops.surface_sampling import sample_surface
    from tasks.grasp.evaluation.accuracy import affordance_accuracy
    from tasks.grasp.evaluation.contact import object_mesh, vertex_distances
    from tasks.grasp.evaluation.diversity import diversity
    from tasks.grasp.evaluation.penetration import object_voxel_centres, penetration_volume
    from tasks.grasp.evaluation.simulation import SimJob, decompose_object, object_key, simulate_many
    from tasks.pseudo_label.classifier_model import TrainResult

    keys = [object_key(g.object_vertices, g.object_faces) for g in grasps]
    first = {k: g for k, g in zip(keys, grasps, strict=True)}
    meshes, seconds = {}, 0.0
    for key, g in first.items():
        mesh = object_mesh(g.object_vertices, g.object_faces)
        (voxels, _), t = _timed(lambda m=mesh: (object_voxel_centres(m), sample_surface(m.vertices, m.faces, 2048,
                                                                                          np.random.default_rng(0))))
        meshes[key], seconds = (mesh, voxels), seconds + t
    out = {"objects_voxels_and_samples": _rate(len(first), seconds)}
    with tempfile.TemporaryDirectory() as tmp:
        _, t = _timed(lambda: [decompose_object(g.object_vertices, g.object_faces, tmp) for g in first.values()])
    out["objects_vhacd_serial"] = _rate(len(first), t)
    _, t = _timed(lambda: [penetration_volume(closed_hand(g.hand_verts, g.hand_faces), meshes[k][1])
                           for g, k in zip(grasps, keys, strict=True)])
    out["penetration_volume"] = _rate(len(grasps), t)
    _, t = _timed(lambda: [vertex_distances(g.hand_verts, meshes[k][0]) for g, k in zip(grasps, keys, strict=True)])
    out["penetration_depth_and_contact"] = _rate(len(grasps), t)
    jobs = [SimJob(g.hand_verts, g.hand_faces, k) for g, k in zip(grasps, keys, strict=True)]
    objects = {k: (g.object_vertices, g.object_faces) for k, g in first.items()}
    with tempfile.TemporaryDirectory() as tmp:
        simulate_many(jobs[:1], objects, tmp, workers=1)  # decompositions cached in tmp: time the drops alone
        sims, t = _timed(lambda: simulate_many(jobs, objects, tmp, workers=1))
        out["simulation_serial"] = _rate(len(grasps), t)
        simulate_many(jobs[:2 * workers], objects, tmp, pool=pool)  # workers import pybullet and trimesh once
        _, t = _timed(lambda: simulate_many(jobs, objects, tmp, pool=pool))
        out[f"simulation_pool_{workers}"] = _rate(len(grasps), t)
    out["simulation_failed"] = sum(not s.ok for s in sims)
    _, t = _timed(lambda: diversity(np.stack([g.joints for g in grasps])))
    out["diversity_kmeans20"] = _rate(len(grasps), t)
    config = PRESETS["cpu"]
    classifier = TrainResult(model=PointTransformer(config).eval(), model_config=config)
    points = [sample_surface(g.object_vertices, g.object_faces, 2048, np.random.default_rng(0)).points for g in grasps]
    _, t = _timed(lambda: affordance_accuracy(classifier, [g.hand_verts for g in grasps], points,
                                              [g.requested_affordance for g in grasps]))
    out["accuracy_cpu_preset"] = _rate(len(grasps), t)
    return out


def overall(grasps: list, pool) -> dict:
    from models.point_bert import PRESETS, PointTransformer
    from tasks.grasp.evaluation.evaluate import evaluate_grasps
    from tasks.pseudo_label.classifier_model import TrainResult

    config = PRESETS["cpu"]
    classifier = TrainResult(model=PointTransformer(config).eval(), model_config=config)
    report, t = _timed(lambda: evaluate_grasps(grasps, classifier, pool=pool))
    return {"evaluate_grasps": _rate(len(grasps), t), "stages_s": {k: round(v, 2) for k, v in report.seconds.items()},
            "table9": report.markdown}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-category", type=int, default=1, help="synthetic objects per category (13 categories)")
    parser.add_argument("--per-part", type=int, default=1, help="grasps per graspable part")
    parser.add_argument("--workers", type=int, default=2, help="simulation processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=None,
                        help="Folder for result.json/result.md (default: docs/results/grasp_eval).")
    args = parser.parse_args()

    from bench.record import bench_table, finish, load_text, started
    from tasks.grasp.evaluation.simulation import sim_pool

    header = started("grasp_eval", seed=args.seed)

    grasps = make_grasps(args.per_category, args.per_part, args.seed)
    with sim_pool(args.workers) as pool:
        _, warm = _timed(lambda: list(pool.map(abs, range(args.workers))))  # start the workers
        result = {"grasps": len(grasps), "objects": len({g.object_id for g in grasps}),
                  "pool_start_s": round(warm, 2), "per_metric": per_metric(grasps, args.workers, pool),
                  "overall": overall(grasps, pool)}
    table9 = result["overall"].pop("table9")
    print(json.dumps(result, indent=2))
    print(table9)
    metrics = result["per_metric"]
    rows = [[METRIC_WORDS.get(name, name.replace("_", " ")), r["count"], r["seconds"], r["per_s"]]
            for name, r in metrics.items() if isinstance(r, dict)]
    whole = result["overall"]["evaluate_grasps"]
    rows.append(["`evaluate_grasps`, every metric (warm simulation pool)", whole["count"], whole["seconds"],
                 whole["per_s"]])
    text = [f"{result['grasps']} synthetic grasps over {result['objects']} objects (the synthetic datasets' own "
            f"grasps as stand-ins for generated ones; making them is not timed), {args.workers} simulation "
            f"processes (started in {result['pool_start_s']:.1f} s). Per-object work (voxels, surface samples, "
            f"V-HACD) counts objects, the rest grasps. {metrics['simulation_failed']} simulations failed; "
            f"{load_text()}."]
    stages = bench_table(["stage of `evaluate_grasps`", "seconds"],
                         [[name, seconds] for name, seconds in result["overall"]["stages_s"].items()], ["", ".2f"])
    finish(header, "grasp_eval", "Grasp evaluation metrics (throughput)", text,
           [bench_table(["measure", "count", "seconds", "per second"], rows, ["", "d", ".2f", ".2f"]), stages],
           out=args.results)


METRIC_WORDS = {
    "objects_voxels_and_samples": "objects: surface voxels (pitch 5 mm) and 2048 surface samples",
    "objects_vhacd_serial": "objects: V-HACD decomposition, one process",
    "penetration_volume": "penetration volume",
    "penetration_depth_and_contact": "penetration depth and contact",
    "simulation_serial": "simulation, one process",
    **{f"simulation_pool_{n}": f"simulation, pool of {n} processes" for n in range(2, 65)},
    "diversity_kmeans20": "diversity (k-means, k = 20)",
    "accuracy_cpu_preset": "ACC (CPU-preset classifier)",
}


if __name__ == "__main__":
    main()
