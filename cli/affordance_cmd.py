"""`afford affordance`: train (or load) the affordance-map model, evaluate it, map the target samples."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markdown import Markdown

from models.affordance_net import PRESETS


def affordance(
    labelled: Path = typer.Option(..., "--labelled", help="Samples table with per-point part labels (AffordPose)."),
    targets: list[Path] = typer.Option([], "--target", help="Samples table to map; repeat for each."),
    instructions: Path | None = typer.Option(None, "--instructions", help="Instructions table (the instruct stage's "
                                                                          "output); needed to map the targets."),
    out: Path = typer.Option(..., "--out", help="Folder for the checkpoint, metrics.md/json and figures."),
    maps_table: Path | None = typer.Option(None, "--maps-table", help="Table to write (default: affordance_maps "
                                                                      "next to the labelled table)."),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="Load this model instead of training."),
    preset: str = typer.Option(PRESETS.default, help=PRESETS.help() + "; cpu: minutes on 2 cores, paper: for a "
                                                     "GPU, tiny: smoke tests."),
    steps: int = typer.Option(450, min=1, max=1_000_000, help="Training steps (batches)."),
    batch_size: int = typer.Option(16, min=1, max=4096, help="Items per training batch."),
    lr: float = typer.Option(1e-3, min=1e-6, max=0.5, help="Peak learning rate (AdamW, warm-up then cosine)."),
    focal_alpha: float = typer.Option(0.5, min=0.0, max=1.0, help="Focal loss weight of the positive points."),
    focal_gamma: float = typer.Option(2.0, min=0.0, max=10.0, help="Focal loss focusing exponent."),
    seed: int = typer.Option(0, min=0, envvar="AFFORD_SEED", help="Seed of the object split and of training."),
    device: str = typer.Option("auto", envvar="AFFORD_DEVICE", help="auto, cpu or cuda[:N]."),
) -> None:
    """Train the per-point affordance model on part labels, report IoU/aIoU/AUC/SIM/MAE on held-out objects
    (overall, per class, per action), and write a map for every target sample that has an instruction."""
    if preset not in PRESETS:
        typer.echo(f"error: --preset {preset!r} is not one of {', '.join(PRESETS.names)}", err=True)
        raise typer.Exit(2)
    for table in (labelled, *targets, *([instructions] if instructions else [])):
        if not (table / "manifest.json").is_file():
            typer.echo(f"error: {table}: not a table (no manifest.json)", err=True)
            raise typer.Exit(2)
    if checkpoint is not None and not checkpoint.is_file():
        typer.echo(f"error: --checkpoint {checkpoint}: no such file", err=True)
        raise typer.Exit(2)
    from flows.affordance import affordance as flow

    try:
        markdown = flow(labelled_table=str(labelled), target_tables=[str(t) for t in targets], out_dir=str(out),
                        instructions_table=str(instructions) if instructions else None,
                        maps_table=str(maps_table) if maps_table else None,
                        checkpoint=str(checkpoint) if checkpoint else None, preset=preset, steps=steps,
                        batch_size=batch_size, lr=lr, focal_alpha=focal_alpha, focal_gamma=focal_gamma,
                        seed=seed, device=device)
    except ValueError as exc:  # a foreign checkpoint, a table without part labels, ...
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    # Wide enough for the per-class table (13 classes as columns, as in the reference's Table 7).
    Console(width=max(Console().width, 170)).print(Markdown(markdown))
