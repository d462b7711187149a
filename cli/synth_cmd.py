"""`afford synth`: synthetic datasets in the four real formats, plus the generated MANO hand."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress


def synth(
    out: Path = typer.Option(..., "--out", help="Folder to write affordpose/, oakink/, grab/, ho3d/ and mano/ into."),
    objects_per_category: int = typer.Option(1, min=1, max=1000, help="Objects per category (13 categories), "
                                                                     "per dataset."),
    grasps_per_part: int = typer.Option(1, min=1, max=100, help="Grasps per graspable part of each object."),
    seed: int = typer.Option(0, min=0, envvar="AFFORD_SEED", help="Random seed: the same seed writes the same files."),
    workers: int = typer.Option(None, min=1, max=256, help="Processes refining grasps (default: one per core when "
                                                           "there are 16 objects or more). The files do not "
                                                           "depend on it."),
) -> None:
    """Write synthetic AffordPose, OakInk-Shape, GRAB and HO-3D datasets in their real on-disk formats."""
    from tasks.synth.datasets import DATASETS, synthesize_datasets

    if out.exists() and not out.is_dir():
        typer.echo(f"error: --out {out}: an existing file, not a folder to write the datasets into", err=True)
        raise typer.Exit(2)
    console = Console()
    with Progress(console=console) as bar:
        tasks = {d: bar.add_task(f"synth {d}", total=None) for d in DATASETS}

        def progress(dataset: str, done: int, total: int) -> None:
            bar.update(tasks[dataset], completed=done, total=total)

        summary = synthesize_datasets(out, objects_per_category, seed, grasps_per_part, progress=progress,
                                      workers=workers)
    for dataset in DATASETS:
        console.print(f"{dataset:<11} {summary.grasps[dataset]:>6} grasps in {summary.files[dataset]:>6} files  "
                      f"{(summary.root / dataset).resolve()}")
    console.print(f"MANO model   {summary.mano_root.resolve()} (generated; drop the licensed MANO_RIGHT.pkl in a "
                  f"folder of your own and pass it as --mano-root to use the real one)")
