"""Incremental re-annotation on a real (small) annotate run: only changed samples are recomputed, removed ones
disappear from every table, unchanged rows stay identical, and cached instruction keys make no call."""

import json

import pytest

from flows.annotate import annotate
from flows.reannotate import reannotate
from schemas.rows import Sample
from tasks.store.read import open_table
from tests.annotate_factories import (
    ANNOTATE_PARAMS,
    add_oakink_copy,
    oakink_params,
    perturb_oakink,
    rows_by_id,
    synth_small,
)

pytestmark = [pytest.mark.server, pytest.mark.slow]
TABLES = ("oakink", "affordance_labels", "instructions", "affordance_maps", "annotated")


@pytest.fixture(scope="module")
def annotated(prefect_harness, tmp_path_factory):
    root = tmp_path_factory.mktemp("reannotate")
    datasets = synth_small(root)
    annotate(datasets_root=str(datasets), mano_root=str(datasets / "mano"), data_root=str(root),
             truth_root=str(datasets), **ANNOTATE_PARAMS)
    return root, datasets


def _ids_of(table, source_paths):
    return {r.sample_id for r in open_table(table, Sample).iter_rows() if r.source_path in source_paths}


def test_reannotate_recomputes_exactly_the_changed_samples(annotated):
    root, datasets = annotated
    tables = root / "tables"
    before = {name: rows_by_id(tables / name) for name in TABLES}
    params = oakink_params(datasets)
    assert len(params) >= 3
    changed_path, copied_from, removed_path = params[0], params[1], params[2]
    relative = {p: p.relative_to(datasets / "oakink").as_posix() for p in params}
    changed_id = _ids_of(tables / "oakink", {relative[changed_path]})
    removed_id = _ids_of(tables / "oakink", {relative[removed_path]})
    perturb_oakink(changed_path)
    added_path = add_oakink_copy(copied_from)
    removed_path.unlink()

    # no generator given: the one that wrote the instructions table (template), so every key is a cache hit
    markdown = reannotate(dataset="oakink", datasets_root=str(datasets), data_root=str(root))
    [report_file] = sorted((root / "reannotate").glob("*-oakink.json"))
    report = json.loads(report_file.read_text())
    added_id = _ids_of(tables / "oakink", {added_path.relative_to(datasets / "oakink").as_posix()})
    assert set(report["changed"]) == changed_id | added_id and len(report["changed"]) == 2
    assert set(report["removed"]) == removed_id
    assert report["unchanged"] == len(params) - 2 and report["rejects"] == 0
    assert report["instructions"]["endpoint_calls"] == 0
    assert report["annotated"] == 2 and "2 changed or new" in markdown

    after = {name: rows_by_id(tables / name) for name in TABLES}
    touched = changed_id | added_id | removed_id
    for name in TABLES:
        unchanged = set(before[name]) - touched
        assert unchanged, name
        for sample_id in unchanged:  # untouched rows are exactly as they were, bit for bit
            assert after[name][sample_id] == before[name][sample_id], (name, sample_id)
        assert not removed_id & set(after[name]), f"{name} still holds the removed sample"
        assert changed_id | added_id <= set(after[name]), name
    [cid] = changed_id
    assert after["oakink"][cid]["content_hash"] != before["oakink"][cid]["content_hash"]
    assert after["annotated"][cid]["content_hash"] == after["oakink"][cid]["content_hash"]
    assert after["affordance_labels"][cid]["origin"] in {"unreviewed", "low_confidence"}
    assert len(after["annotated"][cid]["object_points"]) == ANNOTATE_PARAMS["num_points"]  # as ingested before
    other = {name: rows_by_id(tables / name) for name in ("grab", "ho3d", "affordpose")}
    assert all(other[n] for n in other)  # the other datasets' tables were not part of this run


def test_reannotate_with_nothing_changed_writes_nothing(annotated):
    root, datasets = annotated
    versions = {name: (root / "tables" / name).resolve() for name in TABLES}
    reannotate(dataset="grab", datasets_root=str(datasets), data_root=str(root), instructions="template")
    report = json.loads(sorted((root / "reannotate").glob("*-grab.json"))[-1].read_text())
    assert report["changed"] == [] and report["removed"] == [] and report["unchanged"] > 0
    assert {name: (root / "tables" / name).resolve() for name in TABLES} == versions  # no new table version


def test_reannotate_refuses_an_unknown_dataset_by_name(annotated):
    root, datasets = annotated
    with pytest.raises(ValueError, match="dataset 'mugs' is not a registered dataset format; "
                                         "registered: affordpose, oakink, grab, ho3d"):
        reannotate.fn(dataset="mugs", datasets_root=str(datasets), data_root=str(root))
