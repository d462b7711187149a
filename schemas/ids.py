"""Stable sample ids and content hashes: what incremental re-annotation keys on."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def make_sample_id(dataset: str, relative_path: str, index: int = 0) -> str:
    """Stable id of one sample: `<dataset>-<16 hex>` from (dataset, POSIX relative path, index in file).

    The same source always gets the same id, on any machine, so every stage's table can be joined on it.
    """
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    rel = Path(relative_path).as_posix()
    if rel.startswith("/"):
        raise ValueError(f"relative_path must be relative to the dataset root, got {relative_path!r}")
    digest = hashlib.sha256(f"{dataset}\x1f{rel}\x1f{index}".encode()).hexdigest()[:16]
    return f"{dataset}-{digest}"


def hash_bytes(*parts: bytes) -> str:
    """sha256 hex of the concatenated byte strings (the `content_hash` of a sample)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def hash_file(path: str | Path) -> str:
    """sha256 hex of a file, read in 1 MiB chunks so large files never sit in memory whole."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
