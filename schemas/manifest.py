"""The manifest.json of a table: what a reader trusts, and what the writer replaces last."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from schemas.rows import SHA256_PATTERN

MANIFEST_FORMAT_VERSION = 1


class ShardInfo(BaseModel):
    """One Parquet shard of a table."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+\.parquet$", description="File name inside the table dir.")
    rows: int = Field(ge=0)
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=SHA256_PATTERN)
    deleted: list[int] = Field(default_factory=list, description=(
        "Row indices of the file that are not part of the table: rows an upsert replaced or deleted, kept out "
        "without rewriting the file (sorted, unique). Absent when none."))

    @model_validator(mode="after")
    def _deleted_in_range(self) -> ShardInfo:
        if self.deleted:
            if self.deleted != sorted(set(self.deleted)):
                raise ValueError(f"{self.name}: deleted row indices must be sorted and unique")
            if self.deleted[0] < 0 or self.deleted[-1] >= self.rows:
                raise ValueError(f"{self.name}: deleted row index out of range 0..{self.rows - 1}")
        return self

    @model_serializer(mode="wrap")
    def _omit_empty_deleted(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Manifests without deletions stay byte-identical to those written before the field existed.
        data = handler(self)
        if not self.deleted:
            data.pop("deleted", None)
        return data

    @property
    def live_rows(self) -> int:
        """Rows of the file that belong to the table."""
        return self.rows - len(self.deleted)

    @property
    def content_id(self) -> str:
        """What this shard contributes to the table: the file's sha256, plus its deletions when it has any (the
        same file with other rows deleted is other content)."""
        if not self.deleted:
            return self.sha256
        return f"{self.sha256}-{hashlib.sha256(','.join(map(str, self.deleted)).encode()).hexdigest()[:16]}"


class InputRef(BaseModel):
    """A table that a stage read, pinned to the version it read."""

    model_config = ConfigDict(extra="forbid")

    table: str = Field(description="Path of the input table.")
    version: int = Field(ge=1)
    manifest_sha256: str = Field(pattern=SHA256_PATTERN)


class Lineage(BaseModel):
    """What produced a table version: stage, code version, inputs, checkpoint and parameters."""

    model_config = ConfigDict(extra="forbid")

    stage: str = Field(min_length=1)
    stage_version: str = Field(min_length=1)
    inputs: list[InputRef] = Field(default_factory=list)
    checkpoint_sha256: str | None = Field(None, pattern=SHA256_PATTERN)
    prompt_version: str | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="JSON-able stage parameters.")
    seed: int | None = Field(None, description="The run's random seed, where the stage draws random numbers.")
    code_version: str | None = Field(None, description="git:<commit>[+dirty], or the package version; the writer "
                                                       "fills it in.")
    libraries: dict[str, str] = Field(default_factory=dict, description="Versions of the libraries that computed "
                                                                       "the rows (torch, numpy, pyarrow, ...).")


class ColumnInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    type: str
    nullable: bool


class TableManifest(BaseModel):
    """manifest.json: schema version, shard list with row counts and sha256, and lineage."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["afford-table"] = "afford-table"
    format_version: int = Field(MANIFEST_FORMAT_VERSION, ge=1)
    table: str = Field(min_length=1, description="Table name (the directory name).")
    row_model: str = Field(description="Dotted path of the row model, e.g. schemas.rows.Sample.")
    schema_version: int = Field(ge=1)
    key: list[str] = Field(min_length=1, description="Columns identifying a row.")
    version: int = Field(ge=1, description="Increments with every committed write.")
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    num_rows: int = Field(ge=0)
    columns: list[ColumnInfo]
    shards: list[ShardInfo]
    lineage: Lineage

    @model_validator(mode="after")
    def _totals_agree(self) -> TableManifest:
        total = sum(s.live_rows for s in self.shards)
        if total != self.num_rows:
            raise ValueError(f"num_rows is {self.num_rows} but the shards hold {total} rows")
        names = [s.name for s in self.shards]
        if len(set(names)) != len(names):
            raise ValueError("a shard is listed twice")
        return self
