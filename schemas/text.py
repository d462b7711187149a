"""Bounded, printable text for fields that quote their input (reject reasons, error messages).

Why: a reason may quote a field's value, and a hostile or broken input file puts megabytes or terminal escape
sequences there; every table, log and UI that shows the reason would carry them.
"""

from __future__ import annotations

import unicodedata

REASON_LIMIT = 500
# Control, format (bidi overrides, zero-width), separator and surrogate characters: shown escaped, never raw.
_UNPRINTABLE = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def escape_char(char: str) -> str:
    """`char`, or its backslash escape (`\\n`, `\\x1b`, `\\u202e`) when it is a control character."""
    if unicodedata.category(char) not in _UNPRINTABLE:
        return char
    return char.encode("unicode_escape", errors="backslashreplace").decode("ascii")


def escape_controls(text: str) -> str:
    return "".join(escape_char(c) for c in text)


def bounded_reason(text: str, limit: int = REASON_LIMIT) -> str:
    """`text` with control characters escaped, at most `limit` characters long.

    The head is kept (producers name the file and field first) and the rest is replaced by
    "... (N more characters)", N counted in `text`. Only the kept head is scanned, so a 50 MB reason costs
    no more than a short one."""
    if limit < 40:
        raise ValueError(f"limit must be >= 40 characters to leave room for the cut marker, got {limit}")
    if len(text) <= limit:
        escaped = escape_controls(text)
        if len(escaped) <= limit:
            return escaped
    budget = limit - len(f"... ({len(text)} more characters)")
    pieces, size = [], 0
    for char in text:
        piece = escape_char(char)
        if size + len(piece) > budget:
            break
        pieces.append(piece)
        size += len(piece)
    return f"{''.join(pieces)}... ({len(text) - len(pieces)} more characters)"
