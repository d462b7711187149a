"""The instruct stage's Markdown summary (the flow's Prefect artifact), with every quoted text escaped.

Why escape: instructions, object classes and parts come from datasets and from an LLM. The artifact is rendered
as Markdown (with inline HTML) in the Prefect UI, so a `<script>`, an image link or a stray pipe in one of them
would render, load a URL or break the table instead of being shown as text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from pathlib import Path

from schemas.instruction import InstructionRow
from schemas.text import bounded_reason

# Characters that start emphasis, code, links, images, headings or cells; `( ) . - +` only matter after one of
# these or at the start of a line, which a table cell never is.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]#!|~])")
EXAMPLES = 12


def escape_markdown(text: str, limit: int = 200) -> str:
    """`text` as literal Markdown: control characters escaped and the text cut to `limit` (bounded_reason),
    line breaks as spaces, `& < >` as HTML entities, Markdown punctuation backslash-escaped."""
    flat = " ".join(str(text).splitlines())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(bounded_reason(flat, limit), quote=False))


def instructions_markdown(summary: str, rows: Iterable[InstructionRow], table: Path, examples: int = EXAMPLES) -> str:
    """The run summary (the stage's own counts), one example instruction per (object class, affordance) for the
    first `examples` keys, and the table's path."""
    chosen: dict[tuple[str, str], InstructionRow] = {}
    for row in rows:
        chosen.setdefault((row.object_class, row.affordance), row)
        if len(chosen) >= examples:
            break
    lines = ["| object | affordance | instruction | generator | fallback |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {escape_markdown(r.object_class)} | {escape_markdown(r.affordance)} | "
              f"{escape_markdown(r.instruction)} | {escape_markdown(r.generator)} | {'yes' if r.fallback else ''} |"
              for r in chosen.values()]
    return "\n\n".join(["## Instructions", summary, "\n".join(lines),
                        f"Table `{escape_code(str(table.absolute()))}`."])


def escape_code(text: str) -> str:
    """Text for inside a `code span`: no backtick can close it, no line break can end it."""
    return bounded_reason(" ".join(text.splitlines()), 1000).replace("`", "'")
