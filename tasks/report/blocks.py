"""Generated blocks inside hand-written Markdown (README.md, BENCHMARKS.md, docs/): the text between

    <!-- report:NAME:begin ... -->
    <!-- report:NAME:end -->

belongs to the report generator. `afford report` rewrites it from a run's figures, and the CI check compares it
with what the committed run's figures render to, so no run figure in those files is typed by hand.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

_BLOCK = re.compile(r"(<!-- report:(?P<name>[\w-]+):begin[^>]*-->\n)(?P<body>.*?)(<!-- report:(?P=name):end -->)",
                    re.DOTALL)


def block_names(text: str) -> list[str]:
    """The names of the generated blocks in `text`, in order."""
    return [m.group("name") for m in _BLOCK.finditer(text)]


def blocks(text: str) -> dict[str, str]:
    """{name: body} of every generated block in `text`."""
    return {m.group("name"): m.group("body") for m in _BLOCK.finditer(text)}


def fill_blocks(path: Path, render: Callable[[str], str | None]) -> list[str]:
    """Rewrite every generated block of the file at `path` whose name `render` knows (render(name) -> body, or
    None for a block that belongs to another generator); return the names rewritten. Other text is untouched."""
    text = Path(path).read_text()
    done: list[str] = []

    def replace(match: re.Match[str]) -> str:
        body = render(match.group("name"))
        if body is None:
            return match.group(0)
        done.append(match.group("name"))
        return f"{match.group(1)}{body.rstrip()}\n{match.group(4)}"

    new = _BLOCK.sub(replace, text)
    if new != text:
        Path(path).write_text(new)
    return done
