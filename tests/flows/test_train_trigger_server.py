"""prefect.yaml's train-grasp trigger on a real Prefect server: with its one line switched on, a completed annotate
deployment run starts train-grasp on the annotated table version that run published."""

from __future__ import annotations

import pytest
import yaml

from tasks.instruct.endpoint import free_port
from tasks.runtime.prefect_server import (
    PROJECT_ROOT,
    api_url,
    ensure_pool,
    run_prefect,
    start_server,
    start_worker,
    stop,
)
from tasks.store.read import read_manifest
from tests.deployments import annotate_small_on, wait_for_finished_runs

pytestmark = [pytest.mark.server, pytest.mark.slow, pytest.mark.timeout(2400)]


@pytest.fixture
def server_with_training_trigger(tmp_path, monkeypatch):
    """A real server and process worker; prefect.yaml deployed with the train-grasp trigger enabled (a copy:
    the project's file keeps it off)."""
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    spec = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())
    [trigger] = next(d for d in spec["deployments"] if d["name"] == "train-grasp")["triggers"]
    assert trigger["enabled"] is False
    trigger["enabled"] = True  # the one line a user changes
    enabled = tmp_path / "prefect.yaml"
    enabled.write_text(yaml.safe_dump(spec, sort_keys=False))
    port = free_port()
    api = api_url(port)
    started = [start_server(tmp_path / "prefect", port, timeout_s=180)]
    try:
        ensure_pool(api)
        run_prefect(["deploy", "--all", "--no-prompt", "--prefect-file", str(enabled)], api)
        started.append(start_worker(tmp_path / "prefect", api))
        yield api
    finally:
        for process in reversed(started):
            stop(process.pid, signals=2 if process.name == "worker" else 1)


def test_a_completed_annotate_run_starts_training_on_the_version_it_published(server_with_training_trigger,
                                                                              tmp_path):
    api = server_with_training_trigger
    data_root = tmp_path / "data"
    _, run = annotate_small_on(api, data_root)
    assert run.state.is_completed(), run.state
    _, manifest = read_manifest(data_root / "tables" / "annotated")

    [training] = wait_for_finished_runs(api, "train-grasp")
    assert training.state.is_completed(), training.state
    assert training.parameters["annotated_table"] == str((data_root / "tables" / "annotated").resolve())
    assert int(training.parameters["annotated_version"]) == manifest.version
    assert (data_root / "grasp-model" / "grasp_model.pt").is_file()
