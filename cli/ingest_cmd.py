"""`afford ingest`: one dataset in its own format -> a samples table (+ the rejects table beside it)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress

from tasks.ingest import FORMATS


def ingest(
    format: str = typer.Option(..., "--format", help=f"Dataset format: {', '.join(FORMATS)}."),
    root: Path = typer.Option(..., "--root", help="The dataset's root folder."),
    out: Path = typer.Option(..., "--out", help="Table to write (upserted by sample_id); rejects go to its "
                                                "sibling table `rejects`."),
    mano_root: Path = typer.Option(..., "--mano-root", help="Folder with MANO_RIGHT.pkl (licensed, or the one "
                                                            "`afford synth` writes)."),
    num_points: int = typer.Option(2048, min=16, max=65536, help="Object surface points per sample."),
    frame_step: int = typer.Option(1, min=1, help="Keep every n-th frame (GRAB, HO-3D)."),
    seed: int = typer.Option(0, min=0, help="Seed of the surface sampling."),
) -> None:
    """Read a dataset (AffordPose, OakInk-Shape, GRAB or HO-3D) into a Parquet table of canonical samples."""
    from tasks.ingest import ingest as run

    if format not in FORMATS:
        typer.echo(f"error: --format {format!r} is not one of {', '.join(FORMATS)}", err=True)
        raise typer.Exit(2)
    if not root.is_dir():
        typer.echo(f"error: --root {root}: no such folder", err=True)
        raise typer.Exit(2)
    console = Console()
    try:
        with Progress(console=console) as bar:
            task = bar.add_task(f"ingest {format}", total=None)
            counts = run(format, root, out, mano_root, num_points=num_points, seed=seed, frame_step=frame_step,
                         progress=lambda n: bar.advance(task, n))
    except FileNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    console.print(f"{counts.inputs} inputs = {counts.rows} rows + {counts.rejects} rejects "
                  f"in {counts.seconds:.1f} s ({counts.inputs / max(counts.seconds, 1e-9):.0f} samples/s)")
    console.print(f"table   {counts.table.absolute()}\nrejects {counts.rejects_table.absolute()}")
