"""`afford inspect PATH`: a table's manifest, schema and first rows."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table as RichTable

from tasks.store.errors import TableError
from tasks.store.inspect import format_schema, head_rows, human_bytes, summarise
from tasks.store.read import open_table


def inspect(
    path: Path = typer.Argument(..., help="Table directory (the one holding manifest.json)."),
    rows: int = typer.Option(3, min=0, max=1000, help="How many rows to show."),
    verify: bool = typer.Option(True, help="Check every shard's size and sha256 first."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON only."),
) -> None:
    """Print a table's manifest, row count, schema and a few rows; exit 1 if anything fails to verify."""
    console = Console()
    try:
        table = open_table(path, verify=verify)
        if as_json:
            typer.echo(json.dumps(table.manifest.model_dump(mode="json"), indent=2))
            return
        if verify:
            for shard in table.manifest.shards:
                table.verify_shard(shard)
        _print(console, table, rows)
    except TableError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _print(console: Console, table, rows: int) -> None:
    s, m = summarise(table), table.manifest
    console.print(f"[bold]{s.table}[/bold]  {s.path} -> {s.version_dir}")
    console.print(f"rows {s.num_rows}   shards {s.num_shards}   {human_bytes(s.bytes)}   version {s.version}   "
                  f"written {m.created_at:%Y-%m-%d %H:%M:%S} UTC")
    console.print(f"row model {s.row_model} (schema v{s.schema_version})   key {', '.join(m.key)}")
    lineage = m.lineage
    console.print(f"lineage: stage {lineage.stage} v{lineage.stage_version}"
                  + (f", checkpoint {lineage.checkpoint_sha256[:12]}" if lineage.checkpoint_sha256 else "")
                  + (f", prompt {lineage.prompt_version}" if lineage.prompt_version else "")
                  + "".join(f"\n  input {i.table} v{i.version}" for i in lineage.inputs))
    shards = RichTable("shard", "rows", "bytes", "sha256", title="shards")
    for shard in m.shards:
        shards.add_row(shard.name, str(shard.rows), str(shard.bytes), shard.sha256[:16])
    console.print(shards)
    schema = RichTable("column", "type", "", title="schema")
    for row in format_schema(table.schema):
        schema.add_row(*row)
    console.print(schema)
    if rows:
        head = head_rows(table, rows)
        if head:
            # Transposed: a table has ~20 columns, so one line per column reads better than one per row.
            sample = RichTable("column", *[f"row {i}" for i in range(len(head))], title=f"first {len(head)} rows")
            for column in head[0]:
                sample.add_row(column, *[record[column] for record in head])
            console.print(sample)
