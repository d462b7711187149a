"""Persistent cache of generated instructions: one SQLite file, keyed by
(model, prompt_version, object_class, affordance, part, k). A re-run on unchanged inputs reads every key from
here and makes no endpoint call; a new model or prompt version misses and generates again.

Every call opens its own connection (WAL mode), so the cache is safe to share between threads and processes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from tasks.instruct.generators import Instruction, InstructionKey

BUSY_TIMEOUT_S = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instructions (
    model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    object_class TEXT NOT NULL,
    affordance TEXT NOT NULL,
    part TEXT NOT NULL,            -- '' when the part is unknown (NULLs never match in a primary key)
    k INTEGER NOT NULL,
    instructions TEXT NOT NULL,    -- JSON list of Instruction fields
    created_at TEXT NOT NULL,
    PRIMARY KEY (model, prompt_version, object_class, affordance, part, k)
);
"""


class InstructionCache:
    """get/put the k instructions of one key for one (model, prompt_version)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    def get(self, model: str, prompt_version: str, key: InstructionKey, k: int) -> list[Instruction] | None:
        """The cached instructions of the key, or None on a miss."""
        with self._connect() as db:
            found = db.execute("SELECT instructions FROM instructions WHERE model=? AND prompt_version=? AND "
                               "object_class=? AND affordance=? AND part=? AND k=?",
                               _key(model, prompt_version, key, k)).fetchone()
        return [Instruction(**item) for item in json.loads(found[0])] if found else None

    def put(self, model: str, prompt_version: str, key: InstructionKey, k: int,
            instructions: list[Instruction]) -> None:
        """Store (or replace) the key's instructions; there must be exactly k of them."""
        if len(instructions) != k:
            raise ValueError(f"expected {k} instructions for {key}, got {len(instructions)}")
        payload = json.dumps([asdict(item) for item in instructions])
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO instructions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (*_key(model, prompt_version, key, k), payload, datetime.now(UTC).isoformat()))

    def holds_model(self, model: str, prompt_version: str) -> bool:
        """Whether any key was answered by `model` with `prompt_version`."""
        with self._connect() as db:
            return db.execute("SELECT 1 FROM instructions WHERE model=? AND prompt_version=? LIMIT 1",
                              (model, prompt_version)).fetchone() is not None

    def __len__(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM instructions").fetchone()[0]

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)) as db, db:  # `with db`: commit or roll back
            yield db


def _key(model: str, prompt_version: str, key: InstructionKey, k: int) -> tuple[str, str, str, str, str, int]:
    return model, prompt_version, key.object_class, key.affordance, key.part or "", k
