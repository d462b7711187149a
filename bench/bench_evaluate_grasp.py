"""End-to-end throughput of the evaluate_grasp flow: grasps per second, generation and every metric (simulation in a
process pool) included, with tiny generators (DAM heads 1, 2, 4) on the synthetic annotated table.

    PYTHONPATH=. python -m bench.bench_evaluate_grasp --objects 4 --grasps 4 --workers 2 --out /tmp/eval-bench

Training the three tiny generators is not timed. Objects are spheres (tests/grasp_factories.py) with icosphere
meshes in per-dataset samples tables; the sentence encoder is replaced by the tests' stand-in (its ~6 s load
is paid once per run and is not evaluation work). Prints metrics.json's figures and the report.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


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
    args = parser.parse_args()

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


if __name__ == "__main__":
    main()
