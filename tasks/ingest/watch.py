"""Dataset-change watcher: a manifest of file hashes per dataset, and a Prefect event when files change.

`check` scans each dataset folder under a root (root/<dataset>), compares the sha256 of every file with the
manifest saved by the previous check, saves the new manifest and returns what was added, changed or removed.
`emit_changes` sends one `dataset.changed` event per changed dataset; a deployment trigger on that event
starts an incremental re-annotation (ingest re-keys on each sample's content_hash, so unchanged files cost
nothing). The event contract, which triggers match on:

    event     "dataset.changed"
    resource  {"prefect.resource.id": "afford.dataset.<dataset>", "prefect.resource.name": "<dataset>",
               "afford.dataset.root": "<absolute dataset folder>"}
    payload   {"dataset", "root", "datasets_root", "added": [...], "changed": [...], "removed": [...],
               "counts": {"added": n, "changed": n, "removed": n}, "data_root"?}   (paths relative, posix, sorted)

`root` is the dataset folder, `datasets_root` the folder holding it (what `afford watch` watches), `data_root`
(when the watcher knows it) where the engine's tables live: the reannotate deployment's trigger passes all three
to the flow, so the triggered run works on the folders that changed whatever the deployment's defaults say.

No Prefect import at module level: only `emit_changes` needs it.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas.ids import hash_file
from tasks.ingest.formats import FORMATS

EVENT = "dataset.changed"
RESOURCE_PREFIX = "afford.dataset."
BLOCK_BYTES = 1 << 20  # hash in 1 MiB blocks: constant memory for multi-GB sequence files


def resource_id(dataset: str) -> str:
    """Prefect resource id of a dataset: "afford.dataset.<dataset>" (what a trigger's `match` names)."""
    return f"{RESOURCE_PREFIX}{dataset}"


def _skipped(name: str) -> bool:
    """Hidden names (editor swap files, .git, our own temporaries) and half-written *.tmp files."""
    return name.startswith(".") or name.endswith(".tmp")


def file_sha256(path: Path) -> str:
    return hash_file(path)


def scan(dataset_root: Path) -> dict[str, str]:
    """{relative posix path: sha256 hex} of every file under dataset_root, recursively, keys sorted.

    Skips hidden files and folders and names ending in ".tmp". Symlinked files are hashed by their target;
    symlinked folders are not entered (no cycles). A file removed while scanning is left out (it is gone).
    """
    dataset_root = Path(dataset_root)
    if not dataset_root.is_dir():
        raise ValueError(f"dataset_root: {dataset_root} is not a directory")
    files: dict[str, str] = {}
    for folder, dirnames, filenames in os.walk(dataset_root):
        dirnames[:] = [d for d in dirnames if not _skipped(d)]  # prune in place: os.walk does not descend
        for name in filenames:
            path = Path(folder, name)
            if _skipped(name) or not path.is_file():  # sockets, fifos, broken links
                continue
            try:
                files[path.relative_to(dataset_root).as_posix()] = file_sha256(path)
            except FileNotFoundError:
                continue
    return dict(sorted(files.items()))


@dataclass(frozen=True)
class DatasetChange:
    """What changed in one dataset folder between two scans; paths relative to `root`, sorted."""

    dataset: str
    root: str
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def payload(self) -> dict[str, Any]:
        """The event payload (JSON-serialisable; see the module docstring)."""
        return {
            "dataset": self.dataset,
            "root": self.root,
            "datasets_root": str(Path(self.root).parent),
            "added": sorted(self.added),
            "changed": sorted(self.changed),
            "removed": sorted(self.removed),
            "counts": {"added": len(self.added), "changed": len(self.changed), "removed": len(self.removed)},
        }


def diff(dataset: str, root: Path, old: Mapping[str, str], new: Mapping[str, str]) -> DatasetChange:
    """Paths only in `new` are added, only in `old` removed, in both with another hash changed."""
    return DatasetChange(
        dataset=dataset,
        root=str(root),
        added=tuple(sorted(new.keys() - old.keys())),
        changed=tuple(sorted(p for p in new.keys() & old.keys() if new[p] != old[p])),
        removed=tuple(sorted(old.keys() - new.keys())),
    )


def _check_name(dataset: str) -> str:
    """A dataset name is one folder name: it becomes <state_dir>/<dataset>.json and root/<dataset>."""
    if not dataset or dataset != Path(dataset).name or _skipped(dataset):
        raise ValueError(f"dataset: {dataset!r} is not a plain folder name")
    return dataset


def _write_atomic(path: Path, text: str) -> None:
    """Hidden temporary + fsync + os.replace: a reader (or a crash) sees the old manifest or the new one."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class WatchManifest:
    """The last scan of each dataset: <state_dir>/<dataset>.json = {"dataset", "root", "files", "updated_at"}."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)

    def path(self, dataset: str) -> Path:
        return self.state_dir / f"{_check_name(dataset)}.json"

    def load(self, dataset: str) -> dict[str, str] | None:
        """The recorded {path: sha256}, or None when the dataset was never recorded."""
        path = self.path(dataset)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: corrupt watch manifest ({exc}); delete it to record a new baseline") from exc
        files = record.get("files") if isinstance(record, dict) else None
        if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
            raise ValueError(f"{path}: corrupt watch manifest (no 'files' mapping of path to sha256); "
                             f"delete it to record a new baseline")
        return files

    def save(self, dataset: str, root: Path, files: Mapping[str, str]) -> Path:
        path = self.path(dataset)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        record = {"dataset": dataset, "root": str(root), "files": dict(sorted(files.items())),
                  "updated_at": datetime.now(UTC).isoformat()}
        _write_atomic(path, json.dumps(record, indent=1) + "\n")
        return path


@dataclass(frozen=True)
class Scanned:
    """One dataset's scan against its manifest, not yet saved: `commit` records it."""

    change: DatasetChange
    files: dict[str, str]
    baseline: bool  # no manifest before this scan


def dataset_names(root: Path, datasets: Sequence[str] | None = None) -> list[str]:
    """The dataset folders to watch under root: the given names (ValueError naming any folder missing), or
    each registered format that exists as a folder."""
    if datasets is None:
        return [d for d in FORMATS if (root / d).is_dir()]
    missing = [d for d in datasets if not (root / _check_name(d)).is_dir()]
    if missing:
        raise ValueError(f"datasets: no folder {', '.join(str(root / d) for d in missing)}")
    return list(dict.fromkeys(datasets))  # a name given twice is checked once


def detect(root: Path, state_dir: Path, datasets: Sequence[str] | None = None,
           baseline_emits: bool = False) -> list[Scanned]:
    """Scan and diff each dataset folder under root without saving; one entry per dataset, in order.

    A dataset never recorded is a baseline: its change is empty unless baseline_emits (then every file is
    "added"). Emit first, `commit` after: a failed emit leaves the manifest as it was, so the next check
    reports the same change again instead of losing it.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"root: {root} is not a directory")
    manifest = WatchManifest(state_dir)
    scanned = []
    for dataset in dataset_names(root, datasets):
        folder = (root / dataset).resolve()
        files = scan(folder)
        old = manifest.load(dataset)
        baseline = old is None
        if old is None:  # nothing to compare with: no change, or (baseline_emits) every file added
            old = {} if baseline_emits else files
        scanned.append(Scanned(diff(dataset, folder, old, files), files, baseline))
    return scanned


def commit(state_dir: Path, scanned: Sequence[Scanned]) -> None:
    """Save each scan as its dataset's manifest (unchanged ones too: updated_at says when it was last checked)."""
    manifest = WatchManifest(state_dir)
    for item in scanned:
        manifest.save(item.change.dataset, Path(item.change.root), item.files)


def check(root: Path, state_dir: Path, datasets: Sequence[str] | None = None,
          baseline_emits: bool = False) -> list[DatasetChange]:
    """Scan every dataset folder under root (datasets=None: each registered format that exists), diff against the
    saved manifests, save the new ones, and return the non-empty changes."""
    scanned = detect(root, state_dir, datasets, baseline_emits)
    commit(state_dir, scanned)
    return [s.change for s in scanned if not s.change.empty]


def emit_changes(changes: Sequence[DatasetChange], data_root: str | None = None) -> list[str]:
    """Emit one `dataset.changed` event per change; returns the event ids. Events are sent by Prefect's
    background events worker (flushed at interpreter exit), to PREFECT_API_URL or, unset, an ephemeral API.
    `data_root`: the engine's data root, added to the payload for the re-annotation it triggers."""
    from prefect.events import emit_event
    from prefect.exceptions import EventTooLarge

    ids = []
    for change in changes:
        try:
            event = emit_event(
                event=EVENT,
                resource={"prefect.resource.id": resource_id(change.dataset), "prefect.resource.name": change.dataset,
                          "afford.dataset.root": change.root},
                payload=change.payload() | ({"data_root": data_root} if data_root else {}),
            )
        except EventTooLarge as exc:  # ~25k paths at the default 1.5 MB limit
            counts = change.payload()["counts"]
            raise RuntimeError(f"{change.dataset}: the {EVENT} event listing {counts} paths is too large ({exc}); "
                               f"raise PREFECT_SERVER_EVENTS_MAXIMUM_SIZE_BYTES on the server and here") from exc
        if event is None:
            raise RuntimeError(f"{change.dataset}: event {EVENT} was not emitted: events need a Prefect API "
                               f"(set PREFECT_API_URL to a running `prefect server start`, or use Prefect Cloud)")
        ids.append(str(event.id))
    return ids
