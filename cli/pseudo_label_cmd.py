"""`afford pseudo-label`: train the affordance classifier and label the unlabelled tables."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markdown import Markdown

from models.point_bert import PRESETS


def pseudo_label(
    labelled: Path = typer.Option(..., "--labelled", help="Labelled samples table (AffordPose)."),
    targets: list[Path] = typer.Option(..., "--target", help="Unlabelled samples table; repeat for each."),
    out: Path = typer.Option(..., "--out", help="Folder for checkpoints, plots and the report."),
    preset: str = typer.Option(PRESETS.default, help=PRESETS.help() + "; cpu: 1024 points, paper: 4096."),
    epochs: int = typer.Option(50, min=1, max=10_000, help="Training epochs."),
    lr: float = typer.Option(2e-3, min=1e-6, max=0.5, help="Peak learning rate (AdamW, cosine decay)."),
    k: float = typer.Option(3.0, min=0.0, max=20.0, help="k of the 3-sigma confidence rules."),
    seed: int = typer.Option(0, min=0, envvar="AFFORD_SEED",
                             help="Seed of the split, initialisation and augmentation."),
    checkpoint: Path | None = typer.Option(None, help="Use this saved classifier instead of training one."),
) -> None:
    """Train Point-BERT on the labelled table, measure the 3-sigma rules, and write the labels table."""
    from flows.pseudo_label import pseudo_label as flow
    if preset not in PRESETS:
        typer.echo(f"error: --preset {preset!r} is not one of {', '.join(PRESETS.names)}", err=True)
        raise typer.Exit(2)
    if checkpoint is not None and not checkpoint.is_file():
        typer.echo(f"error: --checkpoint {checkpoint}: no such file", err=True)
        raise typer.Exit(2)
    for table in (labelled, *targets):
        if not (table / "manifest.json").is_file():
            typer.echo(f"error: {table}: not a table (no manifest.json)", err=True)
            raise typer.Exit(2)
    try:
        markdown = flow(labelled_table=str(labelled), target_tables=[str(t) for t in targets], out_dir=str(out),
                        preset=preset, epochs=epochs, lr=lr, k=k, seed=seed,
                        checkpoint=str(checkpoint) if checkpoint else None)
    except ValueError as exc:  # a checkpoint of another architecture, no labelled sample: said by name, no trace
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    Console().print(Markdown(markdown))
