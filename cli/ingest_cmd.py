"""`afford ingest`: one dataset in its own format -> a samples table (+ the rejects table beside it)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress

from tasks.ingest.formats import FORMATS


def resolve_mano_root(option: Path | None, dataset_root: Path) -> tuple[Path, str]:
    """(folder with MANO_RIGHT.pkl, where it came from): the option, the setting, the synth layout, or generated."""
    from models.synthetic_hand import write_synthetic_mano
    from schemas.settings import AffordSettings

    if option is not None:
        return option, "--mano-root"
    settings = AffordSettings()
    if settings.mano_root is not None:
        return settings.mano_root, "AFFORD_MANO_ROOT"
    beside = dataset_root.parent / "mano"
    if (beside / "MANO_RIGHT.pkl").is_file():
        return beside, "found beside the dataset"
    generated = settings.data_root / "mano"
    if not (generated / "MANO_RIGHT.pkl").is_file():
        write_synthetic_mano(generated)
    return generated, "generated hand: pass --mano-root for the licensed MANO model"


def ingest(
    format: str = typer.Option(..., "--format", help=f"Dataset format: {', '.join(FORMATS)}."),
    root: Path = typer.Option(..., "--root", help="The dataset's root folder."),
    out: Path = typer.Option(..., "--out", help="Table to write (upserted by sample_id); rejects go to its "
                                                "sibling table `rejects`."),
    mano_root: Path | None = typer.Option(None, "--mano-root", help="Folder with MANO_RIGHT.pkl. Default: "
                                          "AFFORD_MANO_ROOT, else a mano/ folder beside --root (where `afford "
                                          "synth` puts it), else a generated hand under the data root."),
    num_points: int = typer.Option(2048, min=16, max=65536, help="Object surface points per sample."),
    frame_step: int = typer.Option(1, min=1, help="Keep every n-th frame (GRAB, HO-3D)."),
    seed: int = typer.Option(0, min=0, envvar="AFFORD_SEED", help="Seed of the surface sampling."),
) -> None:
    """Read a dataset (AffordPose, OakInk-Shape, GRAB or HO-3D) into a Parquet table of canonical samples."""
    from tasks.ingest.pipeline import ingest as run

    if format not in FORMATS:
        typer.echo(f"error: --format {format!r} is not one of {', '.join(FORMATS)}", err=True)
        raise typer.Exit(2)
    if not root.is_dir():
        typer.echo(f"error: --root {root}: no such folder", err=True)
        raise typer.Exit(2)
    console = Console()
    mano_root, origin = resolve_mano_root(mano_root, root)
    console.print(f"MANO model: {mano_root} ({origin})")
    try:
        with Progress(console=console) as bar:
            task = bar.add_task(f"ingest {format}", total=None)
            counts = run(format, root, out, mano_root, num_points=num_points, seed=seed, frame_step=frame_step,
                         progress=lambda n: bar.advance(task, n))
    except (FileNotFoundError, ValueError) as exc:  # NotATableError and overlapping paths are ValueErrors
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    console.print(f"{counts.inputs} inputs = {counts.rows} rows + {counts.rejects} rejects "
                  f"in {counts.seconds:.1f} s ({counts.inputs / max(counts.seconds, 1e-9):.0f} samples/s)")
    console.print(f"table   {counts.table.absolute()}\nrejects {counts.rejects_table.absolute()}")
