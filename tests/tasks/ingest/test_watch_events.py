"""`dataset.changed` events sent to a real Prefect API (the test harness) and read back from it."""

import time
from pathlib import Path
from uuid import UUID

import pytest
from typer.testing import CliRunner

from cli.main import app
from tasks.ingest.watch import EVENT, check, emit_changes, resource_id

pytestmark = pytest.mark.server


def _read_back(event_id: str, timeout_s: float = 30.0):
    """The event with this id from the API's /events/filter; polled, as the server persists events in batches."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventIDFilter

    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while True:
            # A fresh filter each poll: its `occurred.until` defaults to the moment it is built.
            page = client.read_events(EventFilter(id=EventIDFilter(id=[UUID(event_id)])), limit=1)
            if page.events:
                return page.events[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"event {event_id} not readable from the API after {timeout_s} s")
            time.sleep(0.5)


def _dataset(root: Path) -> Path:
    for name, data in {"s1/a.npz": b"a", "s1/b.npz": b"b", "s2/c.npz": b"c"}.items():
        (root / "grab" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "grab" / name).write_bytes(data)
    return root / "grab"


def test_emitted_change_is_stored_with_its_resource_and_payload(prefect_harness, tmp_path):
    grab = _dataset(tmp_path / "datasets")
    state = tmp_path / "state"
    check(tmp_path / "datasets", state)
    (grab / "s1" / "a.npz").write_bytes(b"a2")
    (grab / "s2" / "c.npz").unlink()
    (grab / "s3").mkdir()
    (grab / "s3" / "d.npz").write_bytes(b"d")
    (grab / "s3" / "e.npz").write_bytes(b"e")
    [change] = check(tmp_path / "datasets", state)

    [event_id] = emit_changes([change], data_root="/srv/afford-data")
    event = _read_back(event_id)
    assert event.event == EVENT
    assert event.resource.id == resource_id("grab") == "afford.dataset.grab"
    assert event.resource["prefect.resource.name"] == "grab"
    assert event.resource["afford.dataset.root"] == str(grab.resolve())
    assert event.payload == {"dataset": "grab", "root": str(grab.resolve()),
                             "datasets_root": str(grab.resolve().parent),
                             "added": ["s3/d.npz", "s3/e.npz"], "changed": ["s1/a.npz"], "removed": ["s2/c.npz"],
                             "counts": {"added": 2, "changed": 1, "removed": 1}, "data_root": "/srv/afford-data"}


def test_cli_once_emits_a_readable_event(prefect_harness, tmp_path):
    root = tmp_path / "datasets"
    grab = _dataset(root)
    state = tmp_path / "state"
    runner = CliRunner()
    assert runner.invoke(app, ["watch", str(root), "--once", "--state", str(state)]).exit_code == 0
    (grab / "s1" / "b.npz").write_bytes(b"b2")
    result = runner.invoke(app, ["watch", str(root), "--once", "--state", str(state)])
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("grab: 0 added, 1 changed, 0 removed -> event "), result.output
    event = _read_back(line.rsplit(" ", 1)[1])
    assert event.resource.id == "afford.dataset.grab"
    assert event.payload["changed"] == ["s1/b.npz"] and event.payload["counts"]["changed"] == 1
