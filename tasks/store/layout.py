"""On-disk layout of a table and the atomic file operations the writer commits with.

    tables/samples                -> .samples.versions/v000007   (relative symlink, swapped atomically)
    tables/.samples.versions/
        v000006/                  previous version, kept for readers still reading it
        v000007/manifest.json
        v000007/data/part-v000007-00000.parquet
        v000008.staging-<pid>-<hex>/   a writer at work (never under tables/samples)
    tables/.samples.lock          flock held by the one writer

A reader resolves the symlink once and reads that version directory, so a concurrent commit never mixes
versions. A writer killed at any point leaves the symlink on the previous, complete version; the next
writer removes its staging leftovers.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MANIFEST_NAME = "manifest.json"
DATA_DIR = "data"
_VERSION_RE = re.compile(r"^v(\d{6,})$")
_VERSIONS_DIR_RE = re.compile(r"^\.(.+)\.versions$")
# What collect_garbage may remove: version folders and staging leftovers this store wrote, nothing else.
_STORE_OWNED_RE = re.compile(r"^v\d{6,}(\.staging-\d+-[0-9a-f]+)?$")
KEEP_OLD_VERSIONS = 1


class NotATableError(ValueError):
    """The output path holds something this store did not write; publishing there would replace it."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        super().__init__(f"{path}: {what}; refusing to write a table over it (nothing was changed). "
                         f"Choose another output, or remove it yourself if it is really meant to go.")


def table_path(path: str | Path) -> Path:
    """The one path of the table that `path` names, so every writer locks and publishes at the same place.

    An alias (a symlink to the table's symlink, or to one of its version folders) and a table reached through
    a symlinked folder both map to the table whose symlink the store owns; otherwise two writers would take
    two different locks, and a publish through the alias would replace the alias, not the table.
    A link to anything else is returned as it is, for `check_target` to refuse by name."""
    path = Path(path)
    table = Path(os.path.realpath(path.parent)) / path.name  # one lock file however the folder is reached
    real = Path(os.path.realpath(table))
    owner = _VERSIONS_DIR_RE.match(real.parent.name)
    if owner and _VERSION_RE.match(real.name):
        return real.parent.parent / owner.group(1)  # the table itself, an alias of it, or a version folder
    if table.is_symlink() and (real / MANIFEST_NAME).is_file():
        return real  # an alias of a plain-folder table (copied with `cp -rL`)
    return table


def check_target(table: Path, adopt_plain_folder: bool = False) -> None:
    """Refuse to publish over anything that is not a table of this store.

    A table is absent, our symlink into its `.versions` folder, or a plain folder holding a manifest (a table
    copied with `cp -rL`), which is kept as the previous version. Any other file or folder is refused unless
    `adopt_plain_folder` is set, in which case the folder is kept, untouched, as the previous version.
    `table` is mapped through `table_path` first, so an alias of a table is checked as that table."""
    table = table_path(table)
    if table.is_symlink():
        target = Path(os.path.realpath(table))
        if target.parent != versions_dir(table).resolve() or not _VERSION_RE.match(target.name):
            raise NotATableError(table, f"is a link to {target}, not a version of this table")
        return
    if not table.exists():
        return
    if table.is_file():
        raise NotATableError(table, "is an existing file, not a table")
    if table.is_dir() and not (table / MANIFEST_NAME).is_file() and not adopt_plain_folder:
        raise NotATableError(table, f"is an existing folder with no {MANIFEST_NAME}, not a table")


def versions_dir(table: Path) -> Path:
    return table.parent / f".{table.name}.versions"


def lock_path(table: Path) -> Path:
    return table.parent / f".{table.name}.lock"


def version_name(version: int) -> str:
    return f"v{version:06d}"


def shard_name(version: int, index: int) -> str:
    """Shard names carry the version that wrote them, so carried-over shards never collide."""
    return f"part-{version_name(version)}-{index:05d}.parquet"


def resolve_version_dir(table: Path) -> Path:
    """The directory a reader should read: the symlink's target, or the table dir itself when it is a
    plain directory (a table copied with `cp -rL`)."""
    return table.resolve() if table.is_symlink() else table


def committed_versions(table: Path) -> list[int]:
    root = versions_dir(table)
    if not root.is_dir():
        return []
    return sorted(int(m.group(1)) for p in root.iterdir() if (m := _VERSION_RE.match(p.name)))


@contextmanager
def writer_lock(table: Path) -> Iterator[None]:
    """Exclusive lock for the one writer of a table; blocks until a concurrent writer commits."""
    table.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path(table), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def new_staging_dir(table: Path, version: int) -> Path:
    staging = versions_dir(table) / f"{version_name(version)}.staging-{os.getpid()}-{secrets.token_hex(4)}"
    (staging / DATA_DIR).mkdir(parents=True)
    return staging


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write to a hidden temporary name, fsync, rename into place: readers see all of it or none."""
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    with open(tmp, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def link_or_copy(source: Path, target: Path) -> None:
    """Carry an unchanged shard into the new version: a hard link (no bytes copied) where possible."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def publish(table: Path, staging: Path, version: int) -> Path:
    """Commit: rename the staging dir to its version name, then swap the table symlink onto it."""
    final = versions_dir(table) / version_name(version)
    os.replace(staging, final)
    fsync_dir(final.parent)
    if table.exists() and not table.is_symlink():
        # A plain-directory table (copied in from elsewhere) becomes an old version; the symlink replaces it.
        os.replace(table, versions_dir(table) / f"{version_name(version - 1)}.imported-{secrets.token_hex(4)}")
    link = table.with_name(f".{table.name}.link-{secrets.token_hex(4)}")
    os.symlink(os.path.relpath(final, table.parent), link)
    os.replace(link, table)  # atomic on POSIX: readers see the old target or the new one
    fsync_dir(table.parent)
    return final


def collect_garbage(table: Path, keep: int = KEEP_OLD_VERSIONS) -> list[Path]:
    """Remove staging leftovers of killed writers and versions older than the `keep` previous ones.
    Only call it while holding the writer lock."""
    root = versions_dir(table)
    if not root.is_dir():
        return []
    current = resolve_version_dir(table).name if table.is_symlink() else None
    versions = committed_versions(table)
    keep_names = {version_name(v) for v in versions[-(keep + 1):]} | {current}
    removed = []
    for entry in root.iterdir():
        if entry.name in keep_names or not _STORE_OWNED_RE.match(entry.name):
            continue  # imported folders (`.imported-*`) and anything else we did not write are kept
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    for stray in table.parent.glob(f".{table.name}.link-*"):
        stray.unlink(missing_ok=True)
        removed.append(stray)
    return removed
