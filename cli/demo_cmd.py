"""`afford demo`: run the main job on the embedded defaults."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markdown import Markdown

from schemas.settings import AffordSettings


def demo(
    data_root: Path | None = typer.Option(None, help="Where to write tables (default: AFFORD_DATA_ROOT or "
                                                     "./afford-data)."),
    n_samples: int = typer.Option(64, min=1, max=100_000, help="Toy inputs to write."),
    seed: int = typer.Option(0, min=0, help="Random seed."),
    rows_per_shard: int = typer.Option(16, min=1, help="Rows per Parquet shard."),
) -> None:
    """Run the engine end to end on embedded defaults and print where every table was written."""
    from flows.demo import demo as demo_flow

    root = (data_root or AffordSettings().data_root).resolve()
    report = demo_flow(data_root=str(root), n_samples=n_samples, seed=seed, rows_per_shard=rows_per_shard)
    console = Console()
    console.print(Markdown(report))
    console.print(f"\nData root: {root}\nLook inside a table with: afford inspect {root / 'tables' / 'samples'}")
