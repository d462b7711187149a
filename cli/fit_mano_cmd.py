"""`afford fit-mano`: MANO parameters fitted to a table's non-MANO hands (AffordPose's GraspIt! ManoHand)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table


def fit_mano(
    table: Path = typer.Argument(..., help="A samples table (from `afford ingest --format affordpose`)."),
    out: Path | None = typer.Option(None, "--out", help="Fit table to write (default: mano_fits beside TABLE)."),
    figure: Path | None = typer.Option(None, "--figure", help="PNG to write (default: <out>.png beside it)."),
    mano_root: Path | None = typer.Option(None, "--mano-root", help="Folder with MANO_RIGHT.pkl (default as for "
                                                                    "`afford ingest`)."),
    steps: int = typer.Option(300, min=61, help="Optimiser steps per hand (the first 60 choose the start)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write the figures to the data root's "
                                "reports/fit_mano.json (when TABLE is <root>/tables/<name>), for `afford report`."),
) -> None:
    """Fit MANO (pose, shape, translation) to every hand in TABLE that is not MANO's; report the error per hand."""
    from cli.ingest_cmd import resolve_mano_root
    from models.mano_pickle import load_mano_pickle, mano_file
    from schemas.mano_fit import USABLE_FIT_MEAN_MM
    from tasks.fit_mano.figure import fit_figure
    from tasks.fit_mano.stage import fit_table
    from tasks.store.errors import TableError

    console = Console()
    mano_root, origin = resolve_mano_root(mano_root, table.parent)
    console.print(f"MANO model: {mano_root} ({origin})")
    params = load_mano_pickle(mano_file(mano_root, "right"))
    try:
        with Progress(console=console) as bar:
            task = bar.add_task("fit MANO", total=None)
            summary = fit_table(table, params, out, steps=steps, progress=lambda n: bar.advance(task, n))
    except (TableError, FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not summary.sample_ids:
        console.print(f"no hand to fit: {summary.skipped_mano} rows of {table} already carry MANO hands")
        return
    picture = fit_figure(summary, figure or summary.table.with_suffix(".png"))
    report = Table(title=f"{len(summary.sample_ids)} hands fitted in {summary.seconds:.0f} s "
                         f"({summary.skipped_mano} MANO rows skipped)")
    for column in ("", "min", "median", "p90", "max"):
        report.add_column(column, justify="right")
    for name, values in (("mean error mm", summary.mean_mm), ("max error mm", summary.max_mm),
                         ("contact IoU", summary.contact_iou)):
        q = summary.quantiles(values)
        report.add_row(name, *(f"{q[k]:.2f}" for k in ("min", "median", "p90", "max")))
    console.print(report)
    usable = sum(m <= USABLE_FIT_MEAN_MM for m in summary.mean_mm)
    console.print(f"{usable} of {len(summary.mean_mm)} fits have a mean error <= {USABLE_FIT_MEAN_MM:g} mm: "
                  "`afford annotate` joins them with MANO parameters")
    console.print(f"table  {summary.table.absolute()}\nfigure {picture.absolute()}")
    if report:
        _write_report(table, summary, USABLE_FIT_MEAN_MM, console)


def _write_report(table: Path, summary, usable_mm: float, console: Console) -> None:
    """reports/fit_mano.json beside the table's data root's other stage reports; nothing when the table does not
    sit in a data root's tables/ folder (there is no run to report with)."""
    from cli.flow_report import invocation
    from schemas.data_root import DataRoot
    from tasks.report.figures import fit_mano_figures
    from tasks.report.run_files import write_stage
    from tasks.runtime.provenance import provenance

    if table.absolute().parent.name != "tables":
        console.print(f"no report written: {table} is not in a data root's tables/ folder")
        return
    # The fit has no random draws (deterministic starts, then Adam), so there is no seed to record.
    path = write_stage(DataRoot.of_table(table).reports, "fit_mano",
                       fit_mano_figures(provenance(invocation(), None), summary, usable_mm))
    console.print(f"report {path.absolute()} (render with `afford report`)")
