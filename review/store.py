"""The review queue on disk: one SQLite file (WAL mode) that the web app, the simulated reviewer and the paused
self-training flow share.

Three tables:

- ``queues``: one row per cycle, with the Prefect flow run that waits for its review.
- ``items``: the queue of a cycle, (cycle, position) -> the pseudo-label shown, and how many reviewers must
  decide it (``reviews``: 2 for the overlap share). Written once per cycle.
- ``decisions``: the audit trail. Append-only (triggers refuse UPDATE and DELETE): every click is a new row,
  and an undo is a row of kind 'undo' naming the row it cancels (``undoes``).

An item's state comes from the decisions no undo cancels (review/consensus.py): for an item one reviewer
decides, the latest one (highest id) wins; for an overlap item, the majority of its reviewers' latest decisions,
or `disputed` without one. "Later" is the order in which the writes committed (ids are handed out under
SQLite's write lock), never the clock. Progress counts items, so two reviewers deciding the same item count once.

Every call opens its own connection, so a store can be used from several threads and processes at once; writes
take the write lock up front (BEGIN IMMEDIATE) so a read-then-write step never sees another writer in between.
With synchronous=FULL a call that returned has its row in the WAL, which survives the process being killed.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from review.consensus import Vote, item_state
from schemas.review import (
    REVIEWER_PATTERN,
    DecisionIn,
    DecisionRecord,
    ItemState,
    Progress,
    QueueItem,
    ReviewResult,
)

BUSY_TIMEOUT_S = 10.0  # how long a call waits for another writer's lock before sqlite3.OperationalError
STATES: tuple[str, ...] = ("pending", "accepted", "rejected", "relabelled", "skipped", "disputed")
OPEN_STATES = ("pending", "disputed")  # items that still need a decision

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queues (
    cycle INTEGER PRIMARY KEY,
    flow_run_id TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    cycle INTEGER NOT NULL REFERENCES queues(cycle),
    position INTEGER NOT NULL,
    sample_id TEXT NOT NULL,
    dataset TEXT NOT NULL,
    object_category TEXT NOT NULL,
    predicted TEXT NOT NULL,
    confidence REAL NOT NULL,
    reviews INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (cycle, position),
    UNIQUE (cycle, sample_id)
);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cycle INTEGER NOT NULL,
    sample_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('accepted', 'rejected', 'relabelled', 'skipped', 'undo')),
    label TEXT,
    reviewer TEXT NOT NULL,
    comment TEXT NOT NULL,
    at TEXT NOT NULL,
    undoes INTEGER UNIQUE REFERENCES decisions(id),
    FOREIGN KEY (cycle, sample_id) REFERENCES items(cycle, sample_id)
);
CREATE INDEX IF NOT EXISTS decisions_by_reviewer ON decisions (cycle, reviewer, id);
CREATE INDEX IF NOT EXISTS decisions_by_item ON decisions (cycle, sample_id, id);
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
    BEGIN SELECT RAISE(ABORT, 'decisions are append-only: add a row instead of updating one'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
    BEGIN SELECT RAISE(ABORT, 'decisions are append-only: undo a decision instead of deleting it'); END;
"""

# Decisions of a cycle that still count: not undo rows themselves, and not cancelled by one.
_EFFECTIVE = """
SELECT id, sample_id, kind, label, reviewer, comment, at FROM decisions d
WHERE d.cycle = ? AND d.kind != 'undo' AND NOT EXISTS (SELECT 1 FROM decisions u WHERE u.undoes = d.id)
"""
_ITEM_FIELDS = ("cycle", "position", "sample_id", "dataset", "object_category", "predicted", "confidence", "reviews")
_ITEM_COLUMNS = ", ".join(_ITEM_FIELDS)
_ITEM_SLOTS = ", ".join("?" * len(_ITEM_FIELDS))


def _now() -> str:
    """ISO-8601 UTC with microseconds, e.g. 2025-01-31T12:00:00.123456+00:00."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _item(row: sqlite3.Row) -> QueueItem:
    return QueueItem(**dict(row))


def _vote(row: sqlite3.Row) -> Vote:
    return Vote(id=row["id"], reviewer=row["reviewer"], kind=row["kind"], label=row["label"], comment=row["comment"],
                at=row["at"])


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Stores written before items had `reviews` get the column (every old item asked for one review)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(items)")}
    if "reviews" not in columns:
        conn.execute("ALTER TABLE items ADD COLUMN reviews INTEGER NOT NULL DEFAULT 1")


_SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


class ReviewStore:
    """The review queues and decisions of every cycle, in one SQLite file at `path`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"review store {self.path}: a folder, not an SQLite file")
        if self.path.is_file() and self.path.stat().st_size:
            with open(self.path, "rb") as handle:
                if handle.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC:
                    raise ValueError(f"review store {self.path}: not an SQLite file (refusing to write into it)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as conn:
            # WAL: readers (the web app polling progress) never block the writer, and a commit is one append.
            # The journal mode is stored in the file, so setting it once here holds for every later connection.
            conn.execute("PRAGMA journal_mode=WAL")
            # executescript commits an open transaction before it runs, so the BEGIN goes inside the script.
            conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
            conn.execute("BEGIN IMMEDIATE")
            _add_missing_columns(conn)
            conn.execute("COMMIT")

    # --------------------------------------------------------------------------------------------- plumbing

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; every write below says BEGIN IMMEDIATE itself.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA synchronous=FULL")  # fsync the WAL on every commit: a returned call is on disk
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction on a fresh connection: BEGIN IMMEDIATE (write lock now) or BEGIN (one snapshot)."""
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _require_cycle(self, conn: sqlite3.Connection, cycle: int) -> None:
        if conn.execute("SELECT 1 FROM queues WHERE cycle = ?", (cycle,)).fetchone() is None:
            raise KeyError(f"no review queue for cycle {cycle}; known cycles: {self._cycles(conn)}")

    @staticmethod
    def _cycles(conn: sqlite3.Connection) -> list[int]:
        return [row[0] for row in conn.execute("SELECT cycle FROM queues ORDER BY cycle")]

    def _states(self, conn: sqlite3.Connection, cycle: int, sample_id: str | None = None) -> list[ItemState]:
        """States of a cycle's items (or of one item), in position order."""
        self._require_cycle(conn, cycle)
        where, args = ("AND sample_id = ?", (cycle, sample_id)) if sample_id is not None else ("", (cycle,))
        rows = conn.execute(f"SELECT {_ITEM_COLUMNS} FROM items WHERE cycle = ? {where} ORDER BY position", args)
        items = [_item(row) for row in rows]
        votes: dict[str, list[Vote]] = {}
        for row in conn.execute(f"{_EFFECTIVE} {where} ORDER BY id", args):
            votes.setdefault(row["sample_id"], []).append(_vote(row))
        return [item_state(item, votes.get(item.sample_id, [])) for item in items]

    def _one_state(self, conn: sqlite3.Connection, cycle: int, sample_id: str) -> ItemState:
        states = self._states(conn, cycle, sample_id)
        if not states:
            raise KeyError(f"sample_id {sample_id!r} is not in the review queue of cycle {cycle}")
        return states[0]

    # ----------------------------------------------------------------------------------------------- queues

    def create_queue(self, cycle: int, items: Sequence[QueueItem], flow_run_id: str | None = None) -> None:
        """Store the queue of `cycle`. Re-creating it with the same sample_ids in the same order does nothing
        (except record `flow_run_id` when given), so a retried flow task is safe; another list is a ValueError."""
        _check_items(cycle, items)
        with self._transaction(write=True) as conn:
            if conn.execute("SELECT 1 FROM queues WHERE cycle = ?", (cycle,)).fetchone() is not None:
                stored = [row[0] for row in conn.execute(
                    "SELECT sample_id FROM items WHERE cycle = ? ORDER BY position", (cycle,))]
                if stored != [item.sample_id for item in items]:
                    raise ValueError(f"cycle {cycle} already has a review queue of {len(stored)} items that differs "
                                     f"from the {len(items)} items given; a cycle's queue is written once")
            else:
                conn.execute("INSERT INTO queues (cycle, flow_run_id, created_at) VALUES (?, NULL, ?)",
                             (cycle, _now()))
                conn.executemany(f"INSERT INTO items ({_ITEM_COLUMNS}) VALUES ({_ITEM_SLOTS})",
                                 [tuple(getattr(item, f) for f in _ITEM_FIELDS) for item in items])
            if flow_run_id is not None:
                conn.execute("UPDATE queues SET flow_run_id = ? WHERE cycle = ?", (flow_run_id, cycle))

    def set_flow_run(self, cycle: int, flow_run_id: str) -> None:
        """Record the flow run that waits for this cycle's review (the one to resume)."""
        with self._transaction(write=True) as conn:
            self._require_cycle(conn, cycle)
            conn.execute("UPDATE queues SET flow_run_id = ? WHERE cycle = ?", (flow_run_id, cycle))

    def flow_run_id(self, cycle: int) -> str | None:
        """The flow run waiting for this cycle, None when none was recorded; KeyError for an unknown cycle."""
        with self._transaction(write=False) as conn:
            self._require_cycle(conn, cycle)
            return conn.execute("SELECT flow_run_id FROM queues WHERE cycle = ?", (cycle,)).fetchone()[0]

    def cycles(self) -> list[int]:
        """Cycles that have a queue, ascending."""
        with self._transaction(write=False) as conn:
            return self._cycles(conn)

    # ------------------------------------------------------------------------------------------------ reads

    def items(self, cycle: int) -> list[ItemState]:
        """Every item of the cycle with its current state, in position order."""
        with self._transaction(write=False) as conn:
            return self._states(conn, cycle)

    def item(self, cycle: int, position: int) -> ItemState:
        """The item at `position` (0-based) with its current state."""
        with self._transaction(write=False) as conn:
            self._require_cycle(conn, cycle)
            row = conn.execute("SELECT sample_id FROM items WHERE cycle = ? AND position = ?",
                               (cycle, position)).fetchone()
            if row is None:
                total = conn.execute("SELECT COUNT(*) FROM items WHERE cycle = ?", (cycle,)).fetchone()[0]
                raise KeyError(f"position {position} is not in the review queue of cycle {cycle} "
                               f"(positions 0..{total - 1})")
            return self._one_state(conn, cycle, row[0])

    def next_pending(self, cycle: int, after: int = -1, reviewer: str | None = None) -> ItemState | None:
        """The first open item (pending or disputed) with position > `after`, wrapping around to the start; None
        when none is open. A reviewer who skips ahead comes back to what they left behind. With `reviewer`, items
        that reviewer already decided are left out: the second opinion and the tie-break must come from someone
        else."""
        pending = [state for state in self.items(cycle)
                   if state.state in OPEN_STATES and (reviewer is None or reviewer not in state.reviewers)]
        later = [state for state in pending if state.item.position > after]
        return (later or pending or [None])[0]

    def progress(self, cycle: int) -> Progress:
        """Counts of items (not decisions) per state; decided = every state but pending and disputed."""
        states = self.items(cycle)
        by_state = dict.fromkeys(STATES, 0)
        for state in states:
            by_state[state.state] += 1
        return Progress(cycle=cycle, total=len(states), decided=len(states) - sum(by_state[s] for s in OPEN_STATES),
                        by_state=by_state)

    def trail(self, cycle: int) -> list[DecisionRecord]:
        """Every decision row ever written for the cycle, undos included, in id (= commit) order."""
        with self._transaction(write=False) as conn:
            self._require_cycle(conn, cycle)
            rows = conn.execute("SELECT * FROM decisions WHERE cycle = ? ORDER BY id", (cycle,))
            return [DecisionRecord(**dict(row)) for row in rows]

    def reviewer_labels(self, cycle: int) -> dict[str, dict[str, str]]:
        """{sample_id: {reviewer: label}}: each reviewer's own latest decision per item that no undo cancels, as
        review/agreement.py reads it ("accept", "reject", or the relabelled class). Skips are not labels."""
        with self._transaction(write=False) as conn:
            self._require_cycle(conn, cycle)
            rows = conn.execute(f"{_EFFECTIVE} ORDER BY id", (cycle,)).fetchall()
        labels: dict[str, dict[str, str]] = {}
        for row in rows:  # in commit order: a reviewer's later decision replaces their earlier one
            by = labels.setdefault(row["sample_id"], {})
            by.pop(row["reviewer"], None)
            if row["kind"] != "skipped":
                by[row["reviewer"]] = {"accepted": "accept", "rejected": "reject"}.get(row["kind"], row["label"])
        return {sample: by for sample, by in labels.items() if by}

    def result(self, cycle: int) -> ReviewResult:
        """The final states of the cycle's items: what resumes the paused self-training flow."""
        return ReviewResult(cycle=cycle, items=self.items(cycle))

    # ----------------------------------------------------------------------------------------------- writes

    def decide(self, cycle: int, decision: DecisionIn) -> ItemState:
        """Append `decision` to the trail and return the item's new state (this decision: it is the latest).

        A relabel to the predicted class is refused (RelabelledToPredictedError), not stored: the quality gate
        counts every relabel as a wrong prediction, and this one would confirm the prediction."""
        with self._transaction(write=True) as conn:
            before = self._one_state(conn, cycle, decision.sample_id)  # KeyError for an unknown cycle or sample
            if decision.decision == "relabelled" and decision.label == before.item.predicted:
                raise RelabelledToPredictedError(decision.sample_id, decision.label)
            conn.execute("INSERT INTO decisions (cycle, sample_id, kind, label, reviewer, comment, at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)", (cycle, decision.sample_id, decision.decision,
                                                          decision.label, decision.reviewer, decision.comment, _now()))
            return self._one_state(conn, cycle, decision.sample_id)

    def undo(self, cycle: int, reviewer: str) -> ItemState | None:
        """Cancel `reviewer`'s most recent decision in `cycle` that no undo has cancelled yet, by appending an
        'undo' row. Returns the item's state afterwards (its latest remaining decision, or pending; another
        reviewer's later decision stays in force), or None when the reviewer has nothing left to undo."""
        if not re.fullmatch(REVIEWER_PATTERN, reviewer):
            raise ValueError(f"reviewer {reviewer!r} does not match {REVIEWER_PATTERN}")
        with self._transaction(write=True) as conn:
            self._require_cycle(conn, cycle)
            target = conn.execute(f"{_EFFECTIVE} AND d.reviewer = ? ORDER BY id DESC LIMIT 1",
                                  (cycle, reviewer)).fetchone()
            if target is None:
                return None
            conn.execute("INSERT INTO decisions (cycle, sample_id, kind, label, reviewer, comment, at, undoes) "
                         "VALUES (?, ?, 'undo', NULL, ?, '', ?, ?)",
                         (cycle, target["sample_id"], reviewer, _now(), target["id"]))
            return self._one_state(conn, cycle, target["sample_id"])


class RelabelledToPredictedError(ValueError):
    """A relabel whose label is the predicted class: it means "accepted", and must be sent as that."""

    def __init__(self, sample_id: str, label: str) -> None:
        self.field = "label"
        super().__init__(f"label {label!r} is the predicted class of {sample_id!r}: a relabel must name another "
                         f"class; send decision 'accepted' to confirm the prediction")


def _check_items(cycle: int, items: Sequence[QueueItem]) -> None:
    """Items must belong to `cycle`, sit at positions 0..n-1 in order, and name each sample once."""
    for index, item in enumerate(items):
        if item.cycle != cycle:
            raise ValueError(f"item {item.sample_id!r} belongs to cycle {item.cycle}, not to cycle {cycle}")
        if item.position != index:
            raise ValueError(f"item {item.sample_id!r} of cycle {cycle} is at position {item.position}; "
                             f"expected {index} (positions must be 0..{len(items) - 1} in order)")
    seen: set[str] = set()
    for item in items:
        if item.sample_id in seen:
            raise ValueError(f"sample_id {item.sample_id!r} appears twice in the queue of cycle {cycle}")
        seen.add(item.sample_id)
