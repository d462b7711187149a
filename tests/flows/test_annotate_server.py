"""End to end on a real Prefect server: deploy prefect.yaml, run the annotate deployment on a process worker,
change dataset files, emit `dataset.changed` with `afford watch`, and check that the triggered reannotate run
recomputes exactly the changed samples."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.instruct.endpoint import free_port
from tasks.runtime.prefect_server import (
    PROJECT_ROOT,
    api_url,
    deploy_all,
    prefect_env,
    start_server,
    start_worker,
    stop,
)
from tests.annotate_factories import (
    add_oakink_copy,
    oakink_params,
    perturb_oakink,
    rows_by_id,
)
from tests.deployments import annotate_small_on, wait_for_finished_runs

# server start + deploy + a worker-run annotate + the triggered run: ~4 min on an idle 2-core machine
pytestmark = [pytest.mark.server, pytest.mark.slow, pytest.mark.timeout(2400)]
TABLES = ("oakink", "affordance_labels", "instructions", "affordance_maps", "annotated")


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A real `prefect server start` and process worker with their own PREFECT_HOME; stopped by PID afterwards."""
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    port = free_port()
    api = api_url(port)
    started = [start_server(tmp_path / "prefect", port, timeout_s=180)]
    try:
        output = deploy_all(api)
        started.append(start_worker(tmp_path / "prefect", api))
        yield api, output
    finally:
        for process in reversed(started):
            stop(process.pid, signals=2 if process.name == "worker" else 1)


def _watch(api: str, datasets: Path, data_root: Path) -> str:
    result = subprocess.run([sys.executable, "-m", "cli.main", "watch", str(datasets), "--once", "--dataset",
                             "oakink", "--state", str(data_root / "watch")], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, timeout=300, env=prefect_env(api, AFFORD_DATA_ROOT=str(data_root)))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_triggered_reannotation_recomputes_exactly_the_changed_samples(server, tmp_path):
    api, deploy_output = server
    for name in ("annotate", "reannotate-on-change"):
        assert name in deploy_output
    data_root = tmp_path / "data"
    datasets, run = annotate_small_on(api, data_root)
    assert run.state.is_completed(), run.state
    assert "baseline recorded" in _watch(api, datasets, data_root)
    tables = data_root / "tables"
    before = {name: rows_by_id(tables / name) for name in TABLES}

    params = oakink_params(datasets)
    by_path = {r["source_path"]: sid for sid, r in before["oakink"].items()}
    changed_id = by_path[params[0].relative_to(datasets / "oakink").as_posix()]
    removed_id = by_path[params[2].relative_to(datasets / "oakink").as_posix()]
    perturb_oakink(params[0])
    add_oakink_copy(params[1])
    params[2].unlink()
    watched = _watch(api, datasets, data_root)
    # the new grasp folder holds hand_param.pkl and source.txt
    assert "oakink: 2 added, 1 changed, 1 removed -> event" in watched, watched
    event_id = watched.split("-> event ")[1].split()[0]

    [run] = wait_for_finished_runs(api, "reannotate-on-change")
    assert run.state.is_completed(), run.state
    assert run.parameters["event_id"] == event_id and run.parameters["dataset"] == "oakink"

    [report_file] = (data_root / "reannotate").glob("*-oakink.json")
    report = json.loads(report_file.read_text())
    assert report["event_id"] == event_id
    assert len(report["changed"]) == 2 and changed_id in report["changed"]  # the edited grasp + the new one
    assert report["removed"] == [removed_id]
    assert report["unchanged"] == len(params) - 2
    assert report["instructions"]["endpoint_calls"] == 0 and report["annotated"] == 2
    after = {name: rows_by_id(tables / name) for name in TABLES}
    touched = set(report["changed"]) | {removed_id}
    for name in TABLES:
        kept = set(before[name]) - touched
        assert kept and all(after[name][sid] == before[name][sid] for sid in kept), name  # identical rows
        assert removed_id not in after[name] and set(report["changed"]) <= set(after[name]), name
