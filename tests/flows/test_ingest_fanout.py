"""The per-dataset ingest fan-out of the annotate flow, on the default thread pool and on a real Dask cluster:
same tables either way, and concurrent writers of the shared rejects table lose nothing."""

import pytest

from flows.annotate import ingest_all
from schemas.rows import Reject
from schemas.settings import AffordSettings
from tasks.runtime.task_runners import make_task_runner
from tasks.store.read import open_table
from tasks.synth.datasets import synthesize_datasets
from tests.annotate_factories import rows_by_id

pytestmark = [pytest.mark.server, pytest.mark.slow]
FORMATS = ["affordpose", "oakink", "grab", "ho3d"]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("fanout")
    summary = synthesize_datasets(root / "datasets", 1, seed=2, categories=["knife"], steps=10)
    (summary.root / "ho3d" / "train").rglob("*.pkl").__next__().write_bytes(b"not a pickle")  # one reject
    return summary.root


@pytest.mark.parametrize("runner", ["threads", "dask"])
def test_fan_out_ingests_every_dataset_and_keeps_every_reject(prefect_harness, datasets, tmp_path, runner):
    task_runner = make_task_runner(AffordSettings(task_runner=runner, num_workers=2))
    assert type(task_runner).__name__ == {"threads": "ThreadPoolTaskRunner", "dask": "DaskTaskRunner"}[runner]
    counts = ingest_all.with_options(task_runner=task_runner)(FORMATS, str(datasets), str(tmp_path),
                                                              str(datasets / "mano"), 128, 0)
    assert [c.dataset for c in counts] == FORMATS
    assert all(c.inputs == c.rows + c.rejects for c in counts)
    rejects = list(open_table(tmp_path / "tables" / "rejects", Reject).iter_rows())
    assert sum(c.rejects for c in counts) == len(rejects) >= 1  # all four writers' rejects are there
    assert {r.dataset for r in rejects} >= {"ho3d"}
    for fmt in FORMATS:
        assert rows_by_id(tmp_path / "tables" / fmt) or fmt == "ho3d"


def test_dask_without_prefect_dask_names_the_package(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name == "prefect_dask":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    with pytest.raises(ValueError, match="pip install prefect-dask"):
        make_task_runner(AffordSettings(task_runner="dask"))
