"""The sampler's settings (classifier-free guidance scale w, DDIM steps) compared on the val objects, never the
test ones: one trained model, nothing retrained.

    python -m bench.bench_sampling --data-root afford-data/generator
    afford report docs/results/sampling --update BENCHMARKS.md

Each setting runs the evaluate_grasp flow (flows/evaluate_grasp.py) on the val split with the same objects, seeds
and `--grasps` grasps per (object, affordance) pair, no baseline, and the table keeps its pooled Table 9 figures
and the displacement per requested affordance. The checkpoint's own setting (its training config's) is marked.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.val_model_args import add_val_model_arguments, val_checkpoint

# (guidance w, DDIM steps); (2.0, 20) is the `small` preset's own
SETTINGS = ((0.0, 20), (1.0, 20), (2.0, 20), (3.0, 20), (5.0, 20), (2.0, 50))
AFFORDANCES = ("handle-grasp", "wrap-grasp", "lift", "twist", "press")


def parse_setting(spec: str) -> tuple[float, int]:
    """'W,STEPS' -> (w, steps); ValueError naming the entry."""
    try:
        w, steps = spec.split(",")
        setting = float(w), int(steps)
    except ValueError:
        raise ValueError(f"--setting {spec!r}: expected GUIDANCE,DDIM_STEPS, e.g. 2,20") from None
    if not (setting[0] >= 0 and 1 <= setting[1] <= 1000):
        raise ValueError(f"--setting {spec!r}: guidance must be >= 0 and DDIM steps in [1, 1000]")
    return setting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_val_model_arguments(parser, "sampling")
    parser.add_argument("--setting", action="append", default=[], metavar="GUIDANCE,DDIM_STEPS",
                        help="a setting to compare (repeatable); default: the built-in list")
    args = parser.parse_args()
    try:
        settings = [parse_setting(s) for s in args.setting] or list(SETTINGS)
    except ValueError as exc:
        parser.error(str(exc))
    checkpoint = val_checkpoint(parser, args)
    from bench.bench_generator import pooled
    from bench.record import bench_table, finish, load_text, started

    header = started("sampling", seed=args.seed)
    import flows.evaluate_grasp
    from schemas.data_root import DataRoot
    from tasks.grasp.model import read_checkpoint

    saved = read_checkpoint(checkpoint)
    trained, heads = saved["train_config"], int(saved["model_config"]["dam"]["heads"])
    root = DataRoot(args.data_root)
    work = root.grasp / "sampling"
    rows, objects = [], ""
    for guidance, steps in settings:
        out = work / f"w{guidance:g}_steps{steps}"
        flows.evaluate_grasp.evaluate_grasp(
            annotated_table=str(root.tables / "annotated"), checkpoints={heads: str(checkpoint)}, out_dir=str(out),
            objects_per_dataset=args.objects, grasps_per_object=args.grasps, workers=args.workers, seed=args.seed,
            baselines=[], split="val", by_affordance=True, guidance=guidance, ddim_steps=steps)
        metrics = json.loads((out / "metrics.json").read_text())
        objects = f"{metrics['objects']['evaluated']} val (object, affordance) pairs"
        figures = pooled(metrics["table9"], "model", heads)
        per_affordance = {r["affordance"]: r["sim_displacement_cm"] for r in metrics["by_affordance"]
                          if r["method"] == "model"}
        own = guidance == trained["guidance"] and steps == trained["ddim_steps"]
        rows.append([f"w {guidance:g}, {steps} steps" + (" (trained default)" if own else ""), figures["num_grasps"],
                     figures["contact_ratio_percent"], figures["sim_displacement_cm"],
                     figures["penetration_depth_cm"], figures["entropy"], figures["acc_percent"],
                     *[per_affordance.get(a, "n/a") for a in AFFORDANCES]])
        print(rows[-1], flush=True)
    text = [f"Checkpoint `{checkpoint}` ({heads} DAM heads; trained with guidance {trained['guidance']} and "
            f"{trained['ddim_steps']} DDIM steps); {objects}; {args.grasps} grasps per pair and setting, noise seed "
            f"{args.seed} for every setting; simulation on {args.workers} processes; {load_text()}. Entropy: the "
            "smallest per dataset. Per-setting reports: " + str(work) + "."]
    table = bench_table(["setting", "grasps", "contact %", "simulation displacement cm", "penetration depth cm",
                         "entropy (min)", "ACC %", *[f"{a} displacement cm" for a in AFFORDANCES]], rows,
                        ["", "d", ".1f", ".2f", ".2f", ".2f", ".1f", *[".2f"] * len(AFFORDANCES)])
    finish(header, "sampling", "Sampler settings compared on val objects", text, [table], out=args.results)


if __name__ == "__main__":
    main()
