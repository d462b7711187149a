"""Errors of the shard store. Each names the file (and field or column) at fault."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError


class TableError(Exception):
    """Base of every shard-store error; `path` is the file or directory at fault."""

    def __init__(self, path: str | Path, message: str) -> None:
        self.path = Path(path)
        super().__init__(f"{self.path}: {message}")


class NotATableError(TableError):
    """The path holds no manifest.json."""


class ManifestError(TableError):
    """manifest.json is unreadable, not JSON, or fails validation."""


class MissingShardError(TableError):
    """The manifest names a shard that is not on disk."""


class ChecksumError(TableError):
    """A shard's sha256 or size differs from the manifest's."""


class ShardReadError(TableError):
    """A shard is not valid Parquet (truncated or corrupt)."""


class SchemaVersionError(TableError):
    """The table was written with another schema version or row model than the reader expects."""


class SchemaMismatchError(TableError):
    """A batch or shard has columns or types other than the row model's."""


class RowValidationError(TableError):
    """A row fails its model's validation; `field` and `sample_id` say where."""

    def __init__(self, path: str | Path, message: str, *, field: str | None = None,
                 sample_id: str | None = None) -> None:
        self.field = field
        self.sample_id = sample_id
        super().__init__(path, message)


class DuplicateKeyError(TableError):
    """One write gave the same key twice."""


def describe_validation(exc: ValidationError, limit: int = 3) -> tuple[str | None, str]:
    """(first bad field, "field a: msg; field b: msg") of a pydantic error, for messages and reject reasons."""
    errors = exc.errors()
    fields = [".".join(str(p) for p in e["loc"]) or None for e in errors]
    parts = [f"field {f}: {e['msg']}" for f, e in zip(fields, errors, strict=True)][:limit]
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more")
    return fields[0], "; ".join(parts)
