"""`afford settings`: show the effective settings and where each can be changed."""

from __future__ import annotations

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table as RichTable

from cli.errors import settings_errors
from schemas.settings import AffordSettings


def settings() -> None:
    """Print every setting with its value (secrets masked), environment variable and description."""
    try:
        current = AffordSettings()
    except ValidationError as exc:
        for line in settings_errors(exc):
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(2) from None
    table = RichTable("variable", "value", "description")
    for name, info in AffordSettings.model_fields.items():
        value = getattr(current, name)
        shown = "(set, hidden)" if "key" in name and value is not None else str(value)
        table.add_row(f"AFFORD_{name.upper()}", shown, info.description or "")
    Console().print(table)
