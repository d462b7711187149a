"""Reading tables: the manifest first, then each shard checked (size, sha256, schema) and streamed."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from schemas.arrow_convert import batch_to_dicts
from schemas.arrow_schema import arrow_schema, row_model_name
from schemas.ids import hash_file
from schemas.manifest import ShardInfo, TableManifest
from schemas.rows import Row
from tasks.store import layout
from tasks.store.errors import (
    ChecksumError,
    ManifestError,
    MissingShardError,
    NotATableError,
    RowValidationError,
    SchemaMismatchError,
    SchemaVersionError,
    ShardReadError,
    describe_validation,
)
from tasks.store.keys import key_array

_CHUNK = 1 << 20


def read_manifest(path: str | Path) -> tuple[Path, TableManifest]:
    """(version directory, manifest) of the table at `path`, pinned to the version current right now."""
    table = Path(path)
    version_dir = layout.resolve_version_dir(table)
    manifest_path = version_dir / layout.MANIFEST_NAME
    try:
        raw = manifest_path.read_bytes()
    except FileNotFoundError:
        raise NotATableError(table, f"no {layout.MANIFEST_NAME}; not a table (or never committed)") from None
    try:
        return version_dir, TableManifest.model_validate(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise ManifestError(manifest_path, f"not valid JSON: {exc}") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or "(root)"
        raise ManifestError(manifest_path, f"field {field}: {error['msg']}") from None


def table_exists(path: str | Path) -> bool:
    return (layout.resolve_version_dir(Path(path)) / layout.MANIFEST_NAME).is_file()


class Table:
    """A committed table version. Shards are verified on first read (size and sha256)."""

    def __init__(self, path: Path, version_dir: Path, manifest: TableManifest,
                 model: type[Row] | None, verify: bool) -> None:
        self.path = path
        self.version_dir = version_dir
        self.manifest = manifest
        self.model = model
        self.verify = verify
        self._verified: set[str] = set()

    @property
    def num_rows(self) -> int:
        return self.manifest.num_rows

    @property
    def version(self) -> int:
        return self.manifest.version

    @property
    def manifest_path(self) -> Path:
        return self.version_dir / layout.MANIFEST_NAME

    @property
    def schema(self) -> pa.Schema:
        if self.model is not None:
            return arrow_schema(self.model)
        if self.manifest.shards:
            return self._open(self.manifest.shards[0]).schema_arrow
        return pa.schema([])

    def shard_path(self, shard: ShardInfo) -> Path:
        return self.version_dir / layout.DATA_DIR / shard.name

    def shard_paths(self) -> list[Path]:
        return [self.shard_path(s) for s in self.manifest.shards]

    def verify_shard(self, shard: ShardInfo, full: bool = True) -> None:
        """Check the shard exists with the manifest's size and (when `full`) sha256."""
        path = self.shard_path(shard)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise MissingShardError(path, f"listed in {self.manifest_path} but missing") from None
        if size != shard.bytes:
            raise ChecksumError(path, f"size {size} bytes, manifest says {shard.bytes} (truncated or replaced)")
        if not full or shard.name in self._verified:
            return
        actual = hash_file(path)
        if actual != shard.sha256:
            raise ChecksumError(path, f"sha256 {actual[:16]}... differs from the manifest's "
                                      f"{shard.sha256[:16]}...")
        self._verified.add(shard.name)

    def _open(self, shard: ShardInfo) -> pq.ParquetFile:
        self.verify_shard(shard, full=self.verify)
        path = self.shard_path(shard)
        try:
            parquet = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ShardReadError(path, f"not readable as Parquet: {exc}") from None
        if parquet.metadata.num_rows != shard.rows:  # a manifest edited to say otherwise is caught here
            raise ManifestError(path, f"holds {parquet.metadata.num_rows} rows, {self.manifest_path} says "
                                      f"{shard.rows}")
        if self.model is not None:
            self._check_schema(path, parquet.schema_arrow)
        return parquet

    def _check_schema(self, path: Path, got: pa.Schema) -> None:
        want = arrow_schema(self.model)
        for field in want:
            if field.name not in got.names:
                raise SchemaMismatchError(path, f"column {field.name!r} missing")
            if got.field(field.name).type != field.type:
                raise SchemaMismatchError(path, f"column {field.name!r} has type {got.field(field.name).type}, "
                                                f"expected {field.type}")

    def read_shard(self, shard: ShardInfo, columns: Sequence[str] | None = None, *,
                   live_only: bool = True) -> pa.Table:
        """The shard's rows (or some columns); `live_only=False`: every row of the file, its deleted ones too
        (for the writer, which addresses rows by their index in the file)."""
        parquet = self._open(shard)
        try:
            data = parquet.read(columns=list(columns) if columns else None)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ShardReadError(self.shard_path(shard), f"read failed: {exc}") from None
        return data.filter(live_mask(shard)) if live_only and shard.deleted else data

    def iter_batches(self, columns: Sequence[str] | None = None, batch_rows: int = 256,
                     shards: Sequence[ShardInfo] | None = None) -> Iterator[pa.RecordBatch]:
        """Stream record batches of at most `batch_rows` rows, shard by shard (memory: one row group)."""
        for shard in self.manifest.shards if shards is None else shards:
            parquet = self._open(shard)
            mask, offset = (live_mask(shard) if shard.deleted else None), 0
            try:
                for batch in parquet.iter_batches(batch_size=batch_rows,
                                                  columns=list(columns) if columns else None):
                    if mask is not None:  # the batch's rows are the file's rows offset .. offset + n - 1
                        size = batch.num_rows
                        batch = batch.filter(pa.array(mask[offset:offset + size]))
                        offset += size
                    yield batch
            except (pa.ArrowInvalid, OSError) as exc:
                raise ShardReadError(self.shard_path(shard), f"read failed: {exc}") from None

    def read(self, columns: Sequence[str] | None = None) -> pa.Table:
        """The whole table (or some columns) in memory."""
        tables = [self.read_shard(s, columns) for s in self.manifest.shards]
        if tables:
            return pa.concat_tables(tables)
        schema = self.schema
        return schema.empty_table().select(list(columns)) if columns else schema.empty_table()

    def to_pandas(self, columns: Sequence[str] | None = None):  # -> pandas.DataFrame
        return self.read(columns).to_pandas()

    def iter_rows(self, batch_rows: int = 256, shards: Sequence[ShardInfo] | None = None) -> Iterator[Row]:
        """Validated row models, streamed (of `shards` only, when given). A row failing validation names its
        shard, row and field."""
        if self.model is None:
            raise ValueError(f"{self.path}: open the table with a row model to iterate rows")
        for shard in self.manifest.shards if shards is None else shards:
            offset = 0
            for batch in self.iter_batches(batch_rows=batch_rows, shards=[shard]):
                for i, raw in enumerate(batch_to_dicts(batch, self.model)):
                    yield self._validated(raw, shard, offset + i)
                offset += batch.num_rows

    def _validated(self, raw: dict, shard: ShardInfo, index: int) -> Row:
        try:
            return self.model.model_validate(raw)
        except ValidationError as exc:
            field, problems = describe_validation(exc)
            raise RowValidationError(self.shard_path(shard), f"row {index} (sample_id={raw.get('sample_id')}): "
                                     f"{problems}", field=field, sample_id=raw.get("sample_id")) from None

    def keys(self) -> list[str]:
        """Key strings of every row (for a one-column key: its values)."""
        key = self.manifest.key
        return [k for s in self.manifest.shards for k in key_array(self.read_shard(s, key), key).to_pylist()]


def live_mask(shard: ShardInfo) -> np.ndarray:
    """(rows,) bool: True for the rows of the shard's file that belong to the table."""
    mask = np.ones(shard.rows, dtype=bool)
    mask[shard.deleted] = False
    return mask


def open_table(path: str | Path, model: type[Row] | None = None, *, verify: bool = True) -> Table:
    """Open the current version of a table. With `model`, refuse a table of another model or schema
    version (SchemaVersionError naming the manifest)."""
    table = Path(path)
    version_dir, manifest = read_manifest(table)
    manifest_path = version_dir / layout.MANIFEST_NAME
    if model is not None:
        if manifest.row_model != row_model_name(model):
            raise SchemaVersionError(manifest_path, f"row_model is {manifest.row_model}, expected "
                                                    f"{row_model_name(model)}")
        if manifest.schema_version != model.SCHEMA_VERSION:
            raise SchemaVersionError(manifest_path, f"schema_version is {manifest.schema_version}, this code "
                                                    f"reads {model.__name__} version {model.SCHEMA_VERSION}; "
                                                    f"re-run the stage that writes it")
    _check_no_unlisted_shards(version_dir, manifest)
    return Table(table, version_dir, manifest, model, verify)


def _check_no_unlisted_shards(version_dir: Path, manifest: TableManifest) -> None:
    """A published version holds exactly the shards its manifest lists; a Parquet file it does not list means the
    manifest lost an entry (edited by hand), and reading on would silently drop those rows."""
    data = version_dir / layout.DATA_DIR
    listed = {shard.name for shard in manifest.shards}
    unlisted = sorted(p.name for p in data.glob("*.parquet")) if data.is_dir() else []
    unlisted = [name for name in unlisted if name not in listed]
    if unlisted:
        raise ManifestError(version_dir / layout.MANIFEST_NAME,
                            f"does not list {len(unlisted)} shard(s) present in {data}: {', '.join(unlisted[:5])}")
