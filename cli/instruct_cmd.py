"""`afford instruct`: language instructions for every labelled sample."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markdown import Markdown

GENERATORS = ("auto", "openai", "template")


def instruct(
    tables: list[Path] = typer.Option(..., "--table", help="Samples table; repeat for each."),
    out: Path = typer.Option(..., "--out", help="Instructions table to write (upserted by sample_id)."),
    labels: Path | None = typer.Option(None, "--labels", help="Self-training labels table (affordance_labels) for "
                                                             "samples without an affordance of their own."),
    generator: str = typer.Option("auto", help="auto: AFFORD_LLM_BASE_URL when set, else the embedded SmolLM2 "
                                               "server; openai: the configured endpoint; template: no model."),
    k: int = typer.Option(3, min=1, max=20, help="Instructions per (class, affordance); each sample gets one."),
) -> None:
    """Generate one short imperative instruction per labelled sample (cached: re-runs call no endpoint)."""
    if generator not in GENERATORS:
        typer.echo(f"error: --generator {generator!r} is not one of {', '.join(GENERATORS)}", err=True)
        raise typer.Exit(2)
    from schemas.rows import AffordanceLabel, Sample
    from schemas.settings import AffordSettings
    from tasks.instruct.choice import check_endpoint
    from tasks.store.read import open_table

    # Checked here, before the flow starts: a table of the wrong kind or a refused endpoint is one error line.
    for table in tables:
        open_table(table, Sample)  # TableError naming the manifest: missing, or not a samples table
    if labels:
        open_table(labels, AffordanceLabel)
    check_endpoint(generator, AffordSettings())
    from flows.instruct import instruct as flow

    try:
        markdown = flow(tables=[str(t) for t in tables], out_table=str(out),
                        labels_table=str(labels) if labels else None, generator=generator, k=k)
    except ValueError as exc:  # e.g. generator openai without AFFORD_LLM_BASE_URL / _MODEL
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    Console().print(Markdown(markdown))
