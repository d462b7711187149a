import hashlib
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tasks.ingest import watch as dataset_watch
from tasks.ingest.formats import FORMATS
from tasks.ingest.watch import (
    EVENT,
    DatasetChange,
    WatchManifest,
    check,
    detect,
    diff,
    resource_id,
    scan,
)

runner = CliRunner()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A datasets root with grab/ (three files) and oakink/ (one), plus a folder that is not a dataset."""
    base = tmp_path / "datasets"
    _write(base / "grab" / "s1" / "mug_lift.npz", b"seq-1")
    _write(base / "grab" / "s2" / "cup_pass.npz", b"seq-2")
    _write(base / "grab" / "tools" / "object_meshes" / "mug.ply", b"mesh")
    _write(base / "oakink" / "shape" / "metaV2" / "object_id.json", b"{}")
    _write(base / "notes" / "readme.txt", b"not a dataset")
    return base


def test_constants_and_resource_id():
    assert tuple(FORMATS) == ("affordpose", "oakink", "grab", "ho3d")
    assert EVENT == "dataset.changed"
    assert resource_id("grab") == "afford.dataset.grab"


def test_scan_hashes_every_file_and_skips_hidden_and_tmp(tmp_path):
    big = bytes(range(256)) * 9000  # > 2 MiB: several 1 MiB blocks
    _write(tmp_path / "a.bin", b"alpha")
    _write(tmp_path / "sub" / "deep" / "big.bin", big)
    _write(tmp_path / ".hidden", b"x")
    _write(tmp_path / ".git" / "config", b"x")
    _write(tmp_path / "sub" / ".swp" / "f", b"x")
    _write(tmp_path / "sub" / "partial.npz.tmp", b"x")
    _write(tmp_path / "cache.tmp" / "f", b"x")
    (tmp_path / "link.bin").symlink_to(tmp_path / "a.bin")
    (tmp_path / "broken").symlink_to(tmp_path / "missing")
    files = scan(tmp_path)
    assert files == {"a.bin": _sha(b"alpha"), "link.bin": _sha(b"alpha"), "sub/deep/big.bin": _sha(big)}
    assert list(files) == sorted(files)


def test_scan_rejects_a_missing_folder_and_a_file(tmp_path):
    with pytest.raises(ValueError, match=str(tmp_path / "nope")):
        scan(tmp_path / "nope")
    with pytest.raises(ValueError, match="not a directory"):
        scan(_write(tmp_path / "f", b""))


def test_scan_of_a_root_under_a_hidden_folder_still_sees_its_files(tmp_path):
    _write(tmp_path / ".cache" / "grab" / "s1.npz", b"s")
    assert scan(tmp_path / ".cache" / "grab") == {"s1.npz": _sha(b"s")}


def test_diff_finds_added_changed_removed_exactly():
    old = {"keep": "1", "edit": "2", "gone": "3", "z-gone": "4"}
    new = {"keep": "1", "edit": "9", "b-new": "5", "a-new": "6"}
    change = diff("grab", Path("/data/grab"), old, new)
    assert change == DatasetChange("grab", "/data/grab", added=("a-new", "b-new"), changed=("edit",),
                                   removed=("gone", "z-gone"))
    assert not change.empty
    assert diff("grab", Path("/data/grab"), old, dict(old)).empty


def test_payload_is_json_with_sorted_lists_and_counts():
    change = DatasetChange("ho3d", "/d/ho3d", added=("b", "a"), changed=(), removed=("c",))
    payload = json.loads(json.dumps(change.payload()))
    assert payload == {"dataset": "ho3d", "root": "/d/ho3d", "datasets_root": "/d", "added": ["a", "b"],
                       "changed": [], "removed": ["c"],
                       "counts": {"added": 2, "changed": 0, "removed": 1}}


def test_manifest_round_trip(tmp_path):
    manifest = WatchManifest(tmp_path / "state")
    assert manifest.load("grab") is None
    path = manifest.save("grab", Path("/d/grab"), {"b": "2", "a": "1"})
    assert path == tmp_path / "state" / "grab.json"
    assert manifest.load("grab") == {"a": "1", "b": "2"}
    record = json.loads(path.read_text())
    assert record["dataset"] == "grab" and record["root"] == "/d/grab" and list(record["files"]) == ["a", "b"]
    assert "updated_at" in record
    assert manifest.save("grab", Path("/d/grab"), {}) == path and manifest.load("grab") == {}


def test_manifest_write_is_atomic(tmp_path, monkeypatch):
    manifest = WatchManifest(tmp_path)
    manifest.save("grab", Path("/d/grab"), {"a": "1"})

    def crash(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(dataset_watch.os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        manifest.save("grab", Path("/d/grab"), {"a": "2"})
    assert manifest.load("grab") == {"a": "1"}  # the old manifest, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grab.json"]  # no temporary left behind


@pytest.mark.parametrize("text", ["{not json", '{"files": ["a"]}', '{"files": {"a": 1}}', "[]", "\udcff"])
def test_corrupt_manifest_error_names_the_file(tmp_path, text):
    path = tmp_path / "grab.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ValueError, match=str(path)):
        WatchManifest(tmp_path).load("grab")


@pytest.mark.parametrize("name", ["", "a/b", "..", ".hidden", "x.tmp"])
def test_manifest_rejects_names_that_are_not_plain_folders(tmp_path, name):
    with pytest.raises(ValueError, match="plain folder name"):
        WatchManifest(tmp_path).path(name)


def test_check_baseline_then_unchanged_then_exact_changes(root, tmp_path):
    state = tmp_path / "state"
    assert check(root, state) == []  # baseline: recorded, nothing emitted
    assert sorted(p.name for p in state.iterdir()) == ["grab.json", "oakink.json"]  # notes/ is not a dataset
    assert check(root, state) == []

    (root / "grab" / "s1" / "mug_lift.npz").write_bytes(b"seq-1 v2")
    _write(root / "grab" / "s3" / "pan_use.npz", b"seq-3")
    (root / "grab" / "s2" / "cup_pass.npz").unlink()
    _write(root / "grab" / "s3" / "pan_use.npz.tmp", b"half-written")
    changes = check(root, state)
    assert changes == [DatasetChange("grab", str((root / "grab").resolve()), added=("s3/pan_use.npz",),
                                     changed=("s1/mug_lift.npz",), removed=("s2/cup_pass.npz",))]
    assert WatchManifest(state).load("grab") == scan(root / "grab")
    assert check(root, state) == []  # the manifest moved on


def test_check_baseline_emits_lists_every_file_as_added(root, tmp_path):
    changes = check(root, tmp_path / "state", datasets=["oakink"], baseline_emits=True)
    assert [(c.dataset, c.added, c.changed, c.removed) for c in changes] == [
        ("oakink", ("shape/metaV2/object_id.json",), (), ())]
    assert check(root, tmp_path / "state", datasets=["oakink"], baseline_emits=True) == []


def test_check_with_an_explicit_dataset_list(root, tmp_path):
    state = tmp_path / "state"
    assert check(root, state, datasets=["notes"]) == []  # any folder may be named explicitly
    assert sorted(p.name for p in state.iterdir()) == ["notes.json"]


def test_check_names_a_missing_dataset_folder(root, tmp_path):
    with pytest.raises(ValueError, match="ho3d"):
        check(root, tmp_path / "state", datasets=["grab", "ho3d"])
    assert not (tmp_path / "state").exists()  # nothing recorded for the valid one either


def test_detect_does_not_save(root, tmp_path):
    state = tmp_path / "state"
    scanned = detect(root, state)
    assert [(s.change.dataset, s.baseline, s.change.empty) for s in scanned] == [("oakink", True, True),
                                                                                ("grab", True, True)]
    assert not state.exists()


def test_a_dataset_folder_gone_is_skipped_unless_named(root, tmp_path):
    state = tmp_path / "state"
    check(root, state)
    os.rename(root / "oakink", tmp_path / "oakink-moved")
    assert check(root, state) == []  # default: watches the folders that exist
    with pytest.raises(ValueError, match="oakink"):
        check(root, state, datasets=["oakink"])


def test_cli_once_baseline_then_unchanged(root, tmp_path):
    state = tmp_path / "state"
    result = runner.invoke(app, ["watch", str(root), "--once", "--state", str(state)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["oakink: baseline recorded (1 files)", "grab: baseline recorded (3 files)"]
    result = runner.invoke(app, ["watch", str(root), "--once", "--state", str(state), "--dataset", "grab"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["grab: unchanged"]


def test_cli_default_state_dir_is_under_data_root(root, tmp_path):
    result = runner.invoke(app, ["watch", str(root), "--once"], env={"AFFORD_DATA_ROOT": str(tmp_path / "data")})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "watch" / "grab.json").is_file()


def test_cli_bad_root_exits_2_naming_it(tmp_path):
    missing = tmp_path / "no-such-root"
    result = runner.invoke(app, ["watch", str(missing), "--once", "--state", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert "error:" in result.output and str(missing) in result.output


def test_cli_missing_dataset_exits_2_naming_it(root, tmp_path):
    result = runner.invoke(app, ["watch", str(root), "--once", "--state", str(tmp_path / "s"), "--dataset", "ho3d"])
    assert result.exit_code == 2
    assert "error:" in result.output and str(root / "ho3d") in result.output


def test_cli_corrupt_manifest_exits_1_naming_it(root, tmp_path):
    state = tmp_path / "s"
    _write(state / "grab.json", b"{")
    result = runner.invoke(app, ["watch", str(root), "--once", "--state", str(state)])
    assert result.exit_code == 1
    assert str(state / "grab.json") in result.output


def test_emit_changes_without_an_events_client_raises(monkeypatch):
    import prefect.events

    monkeypatch.setattr(prefect.events, "emit_event", lambda **kwargs: None)
    change = DatasetChange("grab", "/d/grab", added=("a",), changed=(), removed=())
    with pytest.raises(RuntimeError, match="Prefect API"):
        dataset_watch.emit_changes([change])
    assert dataset_watch.emit_changes([]) == []


def test_emit_changes_names_the_size_setting_when_an_event_is_too_large(monkeypatch):
    import prefect.events
    from prefect.exceptions import EventTooLarge

    def too_large(**kwargs):
        raise EventTooLarge(2_000_000, 1_500_000)

    monkeypatch.setattr(prefect.events, "emit_event", too_large)
    change = DatasetChange("ho3d", "/d/ho3d", added=("a",), changed=(), removed=())
    with pytest.raises(RuntimeError, match="PREFECT_SERVER_EVENTS_MAXIMUM_SIZE_BYTES"):
        dataset_watch.emit_changes([change])


def test_cli_failed_emit_keeps_the_old_manifest_so_the_change_is_retried(root, tmp_path, monkeypatch):
    import prefect.events

    state = tmp_path / "state"
    check(root, state)
    (root / "grab" / "s1" / "mug_lift.npz").write_bytes(b"v2")
    monkeypatch.setattr(prefect.events, "emit_event", lambda **kwargs: None)
    result = runner.invoke(app, ["watch", str(root), "--once", "--state", str(state)])
    assert result.exit_code == 1 and "error:" in result.output and "Prefect API" in result.output
    assert [c.changed for c in check(root, state)] == [("s1/mug_lift.npz",)]  # still pending, not lost


@pytest.mark.slow
def test_cli_loop_reports_a_new_dataset_and_stops_on_sigterm(root, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out.txt"

    def wait_for(text: str) -> None:
        deadline = time.monotonic() + 60
        while text not in out.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.2)

    (root / "oakink").rename(tmp_path / "oakink")
    with open(out, "w") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "watch", str(root), "--state",
                                 str(tmp_path / "state"), "--interval", "1"], stdout=handle, stderr=subprocess.STDOUT,
                                cwd=Path(__file__).resolve().parents[3])
    try:
        wait_for("grab: baseline recorded (3 files)")
        (tmp_path / "oakink").rename(root / "oakink")  # a dataset folder that appears later is picked up
        wait_for("oakink: baseline recorded (1 files)")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    assert out.read_text().splitlines()[-1] == "stopped"
    assert "unchanged" not in out.read_text()  # the loop prints changes only
