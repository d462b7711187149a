"""Do two data roots hold the same tables? What a determinism check asks of two runs with one seed.

Shards are compared by sha256 (the manifest's). Where they differ, the rows are compared with the wall-clock
columns left out: a reject's `created_at` and a review decision's `decided_at` record when a thing happened,
which no seed fixes, and they are the only columns a seeded run may change.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

from tasks.store.read import Table, open_table

WALL_CLOCK_COLUMNS = ("created_at", "decided_at")


def table_differences(root_a: Path, root_b: Path) -> list[str]:
    """One line per difference between the tables of two `tables/` folders ([] when they agree): a table in one
    only, or rows that differ beyond the wall-clock columns. Shards with equal sha256 are not read."""
    names_a, names_b = _names(root_a), _names(root_b)
    differences = [f"{name}: only in {root}" for names, other, root in ((names_a, names_b, root_a),
                                                                       (names_b, names_a, root_b))
                   for name in sorted(names - other)]
    for name in sorted(names_a & names_b):
        table_a, table_b = open_table(root_a / name), open_table(root_b / name)
        if [s.content_id for s in table_a.manifest.shards] == [s.content_id for s in table_b.manifest.shards]:
            continue
        if _row_digests(table_a) != _row_digests(table_b):
            differences.append(f"{name}: rows differ (beyond {', '.join(WALL_CLOCK_COLUMNS)})")
    return differences


def shards_differing(root_a: Path, root_b: Path) -> list[str]:
    """The tables (present in both) whose shards are not byte-identical."""
    return [name for name in sorted(_names(root_a) & _names(root_b))
            if [s.content_id for s in open_table(root_a / name).manifest.shards]
            != [s.content_id for s in open_table(root_b / name).manifest.shards]]


def _names(tables: Path) -> set[str]:
    return {p.name for p in Path(tables).iterdir() if not p.name.startswith(".") and (p / "manifest.json").is_file()}


def _row_digests(table: Table) -> list[str]:
    """sha256 of each row without the wall-clock columns, sorted: concurrent writers (one ingest task per dataset)
    may append their rejects in either order, which changes the shard bytes but not the table's rows."""
    arrow = table.read()
    arrow = arrow.select([c for c in arrow.column_names if c not in WALL_CLOCK_COLUMNS])
    return sorted(hashlib.sha256(repr(row).encode()).hexdigest() for row in arrow.to_pylist())


def row_changes(root_a: Path, root_b: Path) -> dict[str, tuple[int, int]]:
    """{table: (rows of a missing from b, rows of b not in a)} for the tables of `tables/` folder a, rows compared
    without the wall-clock columns and counted with multiplicity (a row written twice counts once as extra). A table
    missing from b loses all its rows. Tables that agree are left out."""
    changes = {}
    names_b = _names(root_b)
    for name in sorted(_names(root_a)):
        rows_a = Counter(_row_digests(open_table(root_a / name)))
        rows_b = Counter(_row_digests(open_table(root_b / name))) if name in names_b else Counter()
        lost, extra = sum((rows_a - rows_b).values()), sum((rows_b - rows_a).values())
        if lost or extra:
            changes[name] = (lost, extra)
    return changes
