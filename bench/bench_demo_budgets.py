"""Training budgets for the demo: time against quality for the classifier and the affordance-map model, on the
tables of a finished demo run, so the demo's defaults are chosen by measurement.

    python -m bench.bench_demo_budgets --data-root afford-data \
        --classifier 50:0.002:cpu-wide 50:0.002 --maps 450:0.0025:cpu-large-patch 450:0.0025 --threads 2
    afford report docs/results/demo_budgets --update BENCHMARKS.md

Classifier rows: cycle 0 of self-training (AffordPose only, the demo's seeded split) trained `epochs` epochs at
learning rate `lr` with the classifier preset given third (default: the default preset); test accuracy, and the
precision and acceptance of the rule the stage picks, on the held-out split. Map rows: the affordance-map model
(preset given third, default: the default preset) trained `steps` steps at `lr` on AffordPose's training objects;
IoU (threshold 0.5), aIoU and AUC on held-out objects, with the texts the demo's instruct stage wrote. Quality
floors the demo must keep (README): test accuracy >= 95 %, accepted-label precision >= 97 %, map IoU >= 0.65.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a file: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _settings(values: list[str], name: str, presets) -> list[tuple[int, float, str | None]]:
    """"50:0.002[:preset]" -> (50, 0.002, preset or None); the preset is checked against `presets`. A clear error
    naming the option otherwise."""
    out = []
    for value in values:
        parts = value.split(":")
        try:
            if len(parts) not in (2, 3):
                raise ValueError
            preset = parts[2] if len(parts) == 3 else None
            out.append((int(parts[0]), float(parts[1]), presets.check(preset, f"--{name}") if preset else None))
        except ValueError as error:
            raise SystemExit(f"--{name} {value!r}: expected COUNT:LR[:PRESET], e.g. 30:0.002:cpu"
                             + (f" ({error})" if str(error) else "")) from None
    return out


def classifier_rows(root: Path, settings: list[tuple[int, float, str | None]], seed: int) -> list[list]:
    from models.preset_choices import CLASSIFIER_PRESETS
    from tasks.pseudo_label.classifier_config import TrainConfig
    from tasks.pseudo_label.stage import prepare_clouds, train_and_evaluate

    clouds = {}  # per point count: the presets may differ in it
    rows = []
    for epochs, lr, chosen in settings:
        preset = chosen or CLASSIFIER_PRESETS.default
        points = CLASSIFIER_PRESETS.from_name(preset).num_points
        if points not in clouds:
            clouds[points] = prepare_clouds(root / "tables" / "affordpose", points, [])
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            result, report = train_and_evaluate(clouds[points], TrainConfig(preset=preset, epochs=epochs, lr=lr,
                                                                            seed=seed), Path(out), k=3.0)
            seconds = time.perf_counter() - start
        chosen = report.measurement.reports[report.rule]
        rows.append([preset, epochs, lr, round(seconds, 1), round(seconds / epochs, 2), result.best_epoch,
                     report.split_accuracy["test"], chosen.precision, chosen.acceptance_rate, report.rule])
        print(f"classifier {preset} {epochs} epochs lr {lr}: {seconds:.0f} s, "
              f"test {report.split_accuracy['test']:.3f}, precision {chosen.precision}", flush=True)
    return rows


def map_rows(root: Path, settings: list[tuple[int, float, str | None]], seed: int) -> list[list]:
    from models.preset_choices import AFFORDANCE_PRESETS
    from models.text_encoder import TextEncoder
    from tasks.affordance.config import MapTrainConfig
    from tasks.affordance.data import instruction_texts, load_items, object_split
    from tasks.affordance.evaluation import evaluate_maps
    from tasks.affordance.inference import TextBank
    from tasks.affordance.maps import evaluation_report
    from tasks.affordance.train import train_map_model

    items = load_items(root / "tables" / "affordpose")
    split = object_split(items, 0.25, seed)
    texts = instruction_texts(set(items.item_keys()), root / "tables" / "instructions")
    bank = TextBank([t for group in texts.values() for t in group], TextEncoder())
    train, test = items.subset(split["train"]), items.subset(split["test"])
    rows = []
    for steps, lr, chosen in settings:
        preset = chosen or AFFORDANCE_PRESETS.default
        config = MapTrainConfig(preset=preset, steps=steps, lr=lr, warmup_steps=min(100, steps // 10), seed=seed)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            model = train_map_model(train, texts, bank, config, out)
            seconds = time.perf_counter() - start
        _, numbers = evaluation_report(evaluate_maps(model.model, test, texts, bank))
        overall = numbers["overall"]
        rows.append([preset, steps, lr, round(seconds, 1), round(seconds / steps, 3), overall["IoU"],
                     overall["aIoU"], overall["AUC"]])
        print(f"maps {preset} {steps} steps lr {lr}: {seconds:.0f} s, IoU {overall['IoU']:.3f}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True, help="A finished demo run's data root.")
    parser.add_argument("--classifier", nargs="*", default=["50:0.002:cpu-wide", "50:0.002", "30:0.002"],
                        metavar="EPOCHS:LR[:PRESET]")
    parser.add_argument("--maps", nargs="*", default=["450:0.0025:cpu-large-patch", "450:0.0025"],
                        metavar="STEPS:LR[:PRESET]")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=None, help="Folder for result.json (default: "
                                                                   "docs/results/demo_budgets).")
    args = parser.parse_args()
    for table in ("affordpose", "instructions"):
        if not (args.data_root / "tables" / table / "manifest.json").is_file():
            raise SystemExit(f"--data-root {args.data_root}: no tables/{table}; run `afford demo` there first")
    if args.threads:
        torch.set_num_threads(args.threads)

    from bench.record import bench_table, finish, load_text, started

    header = started("demo_budgets", args.seed)
    tables = []
    if args.classifier:
        from models.preset_choices import CLASSIFIER_PRESETS

        rows = classifier_rows(args.data_root, _settings(args.classifier, "classifier", CLASSIFIER_PRESETS),
                               args.seed)
        tables.append(bench_table(
            ["preset", "epochs", "lr", "seconds", "s/epoch", "best epoch", "test accuracy", "accepted precision",
             "acceptance", "rule"], rows, ["", "", "g", ".1f", ".2f", "", ".3f", ".3f", ".3f", ""],
            heading="Classifier, cycle 0 (AffordPose only)"))
    if args.maps:
        from models.preset_choices import AFFORDANCE_PRESETS

        rows = map_rows(args.data_root, _settings(args.maps, "maps", AFFORDANCE_PRESETS), args.seed)
        tables.append(bench_table(["preset", "steps", "lr", "seconds", "s/step", "IoU", "aIoU", "AUC"], rows,
                                  ["", "", "g", ".1f", ".3f", ".3f", ".3f", ".3f"],
                                  heading="Affordance-map model (held-out objects)"))
    text = [f"Tables of the demo run at `{args.data_root}`; torch intra-op threads {torch.get_num_threads()}; "
            f"{load_text()}. Floors: test accuracy >= 0.95, accepted precision >= 0.97, IoU >= 0.65."]
    finish(header, "demo_budgets", "Demo training budgets (time against quality)", text, tables, args.results)


if __name__ == "__main__":
    main()
