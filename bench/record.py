"""Where a benchmark's figures go: `docs/results/<kind>/result.json` (provenance and figures) and `result.md`
(rendered), so BENCHMARKS.md's block `<kind>` is written by `afford report` from what the bench measured, never
typed.

    header = started("ingest", seed=0)            # before the work: the code and machine that run it
    ... measure ...
    finish(header, "ingest", "Ingest (synthetic OakInk-Shape)", text=[...], tables=[bench_table(...)])

then `afford report docs/results/ingest --update BENCHMARKS.md`.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"


def started(kind: str, seed: int | None) -> dict[str, Any]:
    """The provenance header of this bench invocation (command line as typed, code version, machine, load)."""
    from tasks.report.run_files import BENCH_KINDS
    from tasks.runtime.provenance import provenance

    if kind not in BENCH_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(BENCH_KINDS)}")
    command = f"python -m bench.{Path(sys.argv[0]).stem} {shlex.join(sys.argv[1:])}".rstrip()
    return provenance(command, seed)


def bench_table(columns: list[str], rows: list[list[Any]], formats: list[str] | None = None,
                heading: str | None = None, notes: list[str] | None = None) -> dict[str, Any]:
    """One measured table: raw cells (numbers stay numbers in the JSON), each column's format spec for Markdown."""
    if formats is not None and len(formats) != len(columns):
        raise ValueError(f"formats has {len(formats)} entries for {len(columns)} columns")
    bad = [i for i, row in enumerate(rows) if len(row) != len(columns)]
    if bad:
        raise ValueError(f"rows {bad[:5]} do not have {len(columns)} cells")
    return {"heading": heading, "columns": columns, "rows": rows, "formats": formats or [""] * len(columns),
            "notes": notes or []}


def load_text() -> str:
    """The 1-minute load average in words, for the paragraph under a timing table (timings on a busy machine are
    upper bounds, and the reader must be told)."""
    try:
        one, _, _ = os.getloadavg()
    except OSError:
        return "load average unknown"
    return f"load average {one:.1f} on {os.cpu_count()} logical cores when the bench ended"


def finish(header: dict[str, Any], kind: str, title: str, text: list[str], tables: list[dict[str, Any]],
           out: Path | None = None) -> Path:
    """Save a bench's titled tables (the generic renderer's figures); return the folder."""
    return save(header, kind, {"title": title, "text": text, "tables": tables}, out)


def save(header: dict[str, Any], kind: str, figures: dict[str, Any], out: Path | None = None) -> Path:
    """Write `<out or docs/results/<kind>>/result.json` and its rendered `result.md`; return the folder."""
    from tasks.report.render import render_run
    from tasks.report.run_files import read_result, write_result

    folder = Path(out) if out is not None else RESULTS / kind
    path = write_result(folder / "result.json", kind, header, figures)
    (folder / "result.md").write_text(render_run(read_result(path)))
    print(f"wrote {path}; put it into BENCHMARKS.md with: afford report {folder} --update BENCHMARKS.md")
    return folder
