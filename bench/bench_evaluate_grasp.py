"""End-to-end throughput of the evaluate_grasp flow: grasps per second, generation and every metric (simulation in a
process pool) included, with tiny generators (DAM heads 1, 2, 4) on the synthetic annotated table.

    PYTHONPATH=. python -m bench.bench_evaluate_grasp --objects 4 --grasps 4 --workers 2 --out /tmp/eval-bench
    afford report docs/results/evaluate_grasp --update BENCHMARKS.md

Training the three tiny generators is not timed. Objects are spheres (tests/grasp_factories.py) with icosphere
meshes in per-dataset samples tables; the sentence encoder is replaced by the tests' stand-in (its ~6 s load
is paid once per run and is not evaluation work). Writes docs/results/evaluate_grasp/ (throughput only: tiny
generators trained for seconds make grasps whose quality figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=4, help="objects per dataset (two datasets)")
    parser.add_argument("--grasps", type=int, default=4, help="grasps per object")
    parser.add_argument("--workers", type=int, default=2, help="simulation processes")
    parser.add_argument("--train-steps", type=int, default=20, help="tiny training steps per stage")
    parser.add_argument("--tto-steps", type=int, default=100)
    parser.add_argument("--fresh-classifier", action="store_true",
                        help="time ACC too, with the CPU-preset classifier at fresh weights (its ACC means nothing)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--results", type=Path, default=None,
                        help="Folder for result.json/result.md (default: docs/results/evaluate_grasp).")
    args = parser.parse_args()
    from bench.record import bench_table, finish, load_text, started

    header = started("evaluate_grasp", seed=0)

    import torch

    import flows.evaluate_grasp
    from tasks.grasp.config import preset_config
    from tasks.grasp.data import items_from_rows, mano_layer
    from tasks.grasp.train import train_grasp_model
    from tests.grasp_factories import fake_embed, write_annotated
    from tests.tasks.grasp.evaluation.test_inputs import write_samples

    torch.set_num_threads(1)  # the MANO layer is several times slower with 2 threads on a loaded 2-core machine
    tables = args.out / "tables"
    rows = write_annotated(tables / "annotated", n=3 * args.objects, affordpose=args.objects, other_split=0)
    write_samples(tables, rows)
    mano, _ = mano_layer()
    items = items_from_rows(rows, mano, fake_embed, num_points=128)
    checkpoints = {}
    for heads in (1, 2, 4):
        config = preset_config("tiny", args.train_steps, dam_heads=heads, device="cpu", num_points=128)
        checkpoints[heads] = str(train_grasp_model(items, mano, config, args.out / f"heads{heads}").model_path)
    classifier = None
    if args.fresh_classifier:
        from models.point_bert import PRESETS, PointTransformer
        from models.point_bert_checkpoint import save_checkpoint

        classifier = args.out / "classifier.pt"
        save_checkpoint(PointTransformer(PRESETS["cpu"]), PRESETS["cpu"], classifier)
    flows.evaluate_grasp.sentence_embedder = lambda: fake_embed
    start = time.perf_counter()
    report = flows.evaluate_grasp.evaluate_grasp(
        annotated_table=str(tables / "annotated"), checkpoints=checkpoints, out_dir=str(args.out / "eval"),
        objects_per_dataset=args.objects, grasps_per_object=args.grasps, workers=args.workers,
        tto_steps=args.tto_steps, classifier=str(classifier) if classifier else None)
    wall = time.perf_counter() - start
    metrics = json.loads((args.out / "eval" / "metrics.json").read_text())
    print(json.dumps({k: metrics[k] for k in ("grasps", "seconds", "grasps_per_s_end_to_end",
                                              "grasps_per_s_metrics", "objects")}, indent=1))
    print(f"flow wall time {wall:.1f} s (pool start, speed timing and the PNG included): "
          f"{metrics['grasps'] / wall:.2f} grasps/s")
    print(report)
    text = [f"Three tiny generators (DAM heads 1, 2, 4; {args.train_steps} training steps per stage, not timed) on "
            f"{metrics['objects']} held-out sphere objects x {args.grasps} grasps each: {metrics['grasps']} grasps; "
            f"{args.workers} simulation processes; test-time optimisation {args.tto_steps} steps; ACC "
            f"{'with a CPU-preset classifier at fresh weights (timed only)' if classifier else 'not computed'}; "
            f"torch on 1 thread; {load_text()}."]
    rows = [["end to end (generation and every metric)", metrics["grasps_per_s_end_to_end"]],
            ["metrics only", metrics["grasps_per_s_metrics"]],
            ["flow wall time (pool start, speed timing and the figure included)", metrics["grasps"] / wall]]
    stages = bench_table(["stage", "seconds"], [[name, value] for name, value in metrics["seconds"].items()],
                         ["", ".2f"])
    table5 = bench_table(["method", "s per grasp, one at a time", "s per grasp, batched", "batch"],
                         [[r["method"], r["single_s"], r["batched_s"], r["batch_size"]] for r in metrics["table5"]],
                         ["", ".4f", ".4f", "d"], heading="Seconds per grasp (layout of Table 5)")
    keys = ["dataset", "dam_heads", "num_grasps", "penetration_volume_cm3", "penetration_depth_cm",
            "sim_displacement_cm", "sim_failed", "contact_ratio_percent", "contact_ratio_volume_percent", "entropy",
            "cluster_size", "acc_percent"]
    table9 = bench_table(["dataset", "DAM heads", "grasps", "penetration volume cm³ (surface voxels)",
                          "penetration depth cm", "simulation displacement cm (failed = 10)", "failed simulations",
                          "contact % (≤ 5 mm)", "contact % (volume > 0)", "entropy", "cluster size", "ACC %"],
                         [[g[k] for k in keys] for g in metrics["table9"]],
                         ["", "d", "d", ".2f", ".2f", ".2f", "d", ".1f", ".1f", ".2f", ".2f", ".1f"],
                         heading="Metrics (layout of Table 9; these tiny models' grasps say nothing of the method)")
    finish(header, "evaluate_grasp", "Grasp evaluation end to end (`evaluate_grasp`)", text,
           [bench_table(["measure", "grasps/s"], rows, ["", ".2f"]), stages, table5, table9], out=args.results)


if __name__ == "__main__":
    main()
