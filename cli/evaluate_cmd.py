"""`afford evaluate`: Table 9 (metrics per dataset and DAM head count) and Table 5 (speed) of trained grasp
generators, with a PNG grid of their grasps."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markdown import Markdown


def check_evaluate_options(annotated: Path, checkpoints: list[str], samples_root: Path | None,
                           classifier: Path | None) -> tuple[dict[int, str] | None, str | None]:
    """({heads: file}, None), or (None, an error message naming the first bad option)."""
    from tasks.grasp.evaluation.inputs import parse_checkpoints

    if not (annotated / "manifest.json").is_file():
        return None, f"--annotated {annotated}: not a table (no manifest.json)"
    try:
        parsed = parse_checkpoints(checkpoints)
    except ValueError as exc:
        return None, f"--checkpoint {exc}"
    for heads, path in parsed.items():
        if heads not in (1, 2, 4):
            return None, f"--checkpoint {heads}={path}: heads must be 1, 2 or 4"
        if not Path(path).is_file():
            return None, f"--checkpoint {heads}={path}: no such file"
    if samples_root is not None and not samples_root.is_dir():
        return None, f"--samples-root {samples_root}: no such folder"
    if classifier is not None and not classifier.is_file():
        return None, f"--classifier {classifier}: no such file"
    return parsed, None


def evaluate(
    annotated: Path = typer.Option(..., "--annotated", help="The annotated table (objects, instructions, maps)."),
    checkpoint: list[str] = typer.Option(..., "--checkpoint", help="HEADS=FILE, once per DAM head count, e.g. "
                                                                   "--checkpoint 1=runs/h1/grasp_model.pt."),
    out: Path = typer.Option(..., "--out", help="Folder for report.md, metrics.json and grasps.png."),
    samples_root: Path | None = typer.Option(None, "--samples-root", help="Folder of the samples tables (one per "
                                             "dataset, with the object meshes); default: the annotated table's."),
    objects_per_dataset: int = typer.Option(4, "--objects-per-dataset", min=1, max=100_000,
                                            help="Distinct objects per dataset."),
    grasps_per_object: int = typer.Option(4, "--grasps-per-object", min=1, max=1024, help="Grasps per object."),
    classifier: Path | None = typer.Option(None, "--classifier", help="Affordance classifier for ACC (default: "
                                           "<data_root>/current/classifier.json's; none: ACC is n/a)."),
    workers: int = typer.Option(0, "--workers", min=0, max=512, help="Simulation processes (0: one per CPU)."),
    tto_steps: int = typer.Option(100, "--tto-steps", min=1, max=100_000, help="Adam steps of the test-time-"
                                                                               "optimisation baseline."),
    speed_batch: int = typer.Option(8, "--speed-batch", min=1, max=4096, help="Batch size of the batched timing."),
    seed: int = typer.Option(0, min=0, envvar="AFFORD_SEED", help="Seed of the sampling noise."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N (generation; metrics run on the CPU)."),
    baseline: list[str] = typer.Option([], "--baseline", help="Also evaluate a baseline in the same Table 9, once "
                                       "per baseline: tta (the model's grasps refined by --tto-steps Adam steps), "
                                       "retrieval (training grasps of the same class and affordance placed on each "
                                       "object) or ground_truth (the object's own grasps)."),
    split: str = typer.Option("auto", "--split", help="test: held-out objects only (a table without test rows is "
                              "refused); val: the same for val (compare settings there); all: every object; auto: "
                              "test when the table has test rows, else all."),
    guidance: float | None = typer.Option(None, "--guidance", min=0.0, max=20.0, help="Classifier-free guidance "
                                          "scale w of the sampler (default: each checkpoint's training config's)."),
    ddim_steps: int | None = typer.Option(None, "--ddim-steps", min=1, max=1000, help="DDIM steps of the sampler "
                                          "(default: the training config's)."),
    by_affordance: bool = typer.Option(False, "--by-affordance", help="Each object once per affordance its rows ask "
                                       "for, with that affordance's instruction (default: once per object)."),
) -> None:
    """Evaluate grasp generators: penetration, simulation, contact, diversity, ACC, speed; Markdown report."""
    parsed, error = check_evaluate_options(annotated, checkpoint, samples_root, classifier)
    if error is None and split not in ("auto", "test", "val", "all"):
        error = f"--split {split!r} is not one of auto, test, val, all"
    if error is None and device not in ("cpu", "auto") and not device.startswith("cuda"):
        error = f"--device {device!r} is not auto, cpu, cuda or cuda:N"
    if error is None:
        from tasks.grasp.evaluation.baselines import BASELINES

        unknown = [b for b in baseline if b not in BASELINES]
        error = f"--baseline {unknown[0]!r} is not one of {', '.join(BASELINES)}" if unknown else None
    if error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2)
    from flows.evaluate_grasp import evaluate_grasp

    try:
        markdown = evaluate_grasp(annotated_table=str(annotated), checkpoints=parsed, out_dir=str(out),
                                  samples_root=str(samples_root) if samples_root else None,
                                  objects_per_dataset=objects_per_dataset, grasps_per_object=grasps_per_object,
                                  classifier=str(classifier) if classifier else None, workers=workers, seed=seed,
                                  speed_batch=speed_batch, tto_steps=tto_steps, device=device,
                                  baselines=list(dict.fromkeys(baseline)), split=split,
                                  by_affordance=by_affordance, guidance=guidance, ddim_steps=ddim_steps)
    except ValueError as exc:  # no object with a mesh, a checkpoint with other heads, ...
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    Console(width=max(Console().width, 160)).print(Markdown(markdown))
