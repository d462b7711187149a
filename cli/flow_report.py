"""The summary a pipeline command prints at the end: the flow's Markdown report, then where the data root is."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from rich.console import Console
from rich.markdown import Markdown

from schemas.data_root import DataRoot


def invocation() -> str:
    """The command line as the user typed it, program name shortened to `afford` (for report headers)."""
    return shlex.join(["afford", *sys.argv[1:]])


def print_flow_report(markdown: str, data_root: Path, example_table: str = "oakink") -> None:
    """Render the report (stage tables) and say where the data root is and how to look inside a table."""
    # Wide enough for the affordance stage's per-class table (13 classes as columns, as in the reference).
    console = Console(width=max(Console().width, 170))
    console.print(Markdown(markdown))
    table = DataRoot(data_root).table(example_table)
    console.print(f"\nData root: {data_root}\nLook inside a table with: afford inspect {table}\n"
                  f"Render this run's figures as Markdown with: afford report {data_root} --out DIR")
