"""annotate on a real Dask cluster (a `dask scheduler` and two `dask worker` processes on 127.0.0.1): its chunked
stages run in the worker processes and give, row for row, the tables of the thread-pool run."""

from __future__ import annotations

import json
import os

import pytest

from flows.annotate import annotate
from tasks.instruct.endpoint import free_port
from tasks.runtime.dask_cluster import start_dask
from tasks.store.compare import table_differences
from tests.annotate_factories import ANNOTATE_PARAMS, synth_small

pytestmark = [pytest.mark.server, pytest.mark.slow, pytest.mark.timeout(1800)]
SHARDS = {"AFFORD_ROWS_PER_SHARD": "4", "AFFORD_CHUNK_SHARDS": "1"}  # small shards: many chunks


@pytest.fixture
def cluster(tmp_path):
    # Workers read AFFORD_* settings from their own environment, as on a real cluster: the same as the flow's.
    cluster = start_dask(tmp_path / "dask", free_port(), workers=2, AFFORD_TORCH_THREADS="1", **SHARDS)
    try:
        yield cluster
    finally:
        cluster.stop()


def _annotate(datasets, root, monkeypatch, **env: str) -> None:
    for name, value in {**SHARDS, **env}.items():
        monkeypatch.setenv(name, value)
    annotate(datasets_root=str(datasets), mano_root=str(datasets / "mano"), data_root=str(root),
             truth_root=str(datasets), **ANNOTATE_PARAMS)


def test_annotate_on_two_dask_workers_gives_the_thread_runs_tables(prefect_harness, cluster, tmp_path, monkeypatch):
    datasets = synth_small(tmp_path)
    _annotate(datasets, tmp_path / "threads", monkeypatch, AFFORD_TASK_RUNNER="threads")
    _annotate(datasets, tmp_path / "dask", monkeypatch, AFFORD_TASK_RUNNER="dask", AFFORD_DASK_ADDRESS=cluster.address)
    stages = ("chunks/classifier_clouds", "affordance/chunks/affordance_maps", "chunks/annotated_join")
    metas = [json.loads(p.read_text()) for stage in stages for p in (tmp_path / "dask" / stage).glob("*/meta.json")]
    assert len(metas) >= 8
    workers = {m["worker"] for m in metas}
    here = f"{os.uname().nodename}:{os.getpid()}"
    assert len(workers) == 2 and here not in workers, workers  # both worker processes, not this one
    assert table_differences(tmp_path / "threads" / "tables", tmp_path / "dask" / "tables") == []
