"""Escaping for the instruct stage's Markdown summary (the flow's Prefect artifact): every quoted text shown as text.

Why escape: instructions, object classes and parts come from datasets and from an LLM. The artifact is rendered
as Markdown (with inline HTML) in the Prefect UI, so a `<script>`, an image link or a stray pipe in one of them
would render, load a URL or break the table instead of being shown as text.
"""

from __future__ import annotations

import html
import re

from schemas.text import bounded_reason

# Characters that start emphasis, code, links, images, headings or cells; `( ) . - +` only matter after one of
# these or at the start of a line, which a table cell never is.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]#!|~])")


def escape_markdown(text: str, limit: int = 200) -> str:
    """`text` as literal Markdown: control characters escaped and the text cut to `limit` (bounded_reason),
    line breaks as spaces, `& < >` as HTML entities, Markdown punctuation backslash-escaped."""
    flat = " ".join(str(text).splitlines())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(bounded_reason(flat, limit), quote=False))


def escape_code(text: str) -> str:
    """Text for inside a `code span`: no backtick can close it, no line break can end it."""
    return bounded_reason(" ".join(text.splitlines()), 1000).replace("`", "'")
