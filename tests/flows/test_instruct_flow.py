"""The instruct flow on toy tables with the template generator (no model): labels from the sample or from the
self-training table, one row per labelled sample, and a summary artifact."""

import logging

import numpy as np
import pytest

from flows.instruct import instruct
from schemas.instruction import InstructionRow
from schemas.rows import AffordanceLabel, Sample
from tasks.store.read import open_table
from tasks.store.write import write_table
from tests.factories import sample_dicts

pytestmark = pytest.mark.server


def test_instruct_flow_writes_one_instruction_per_labelled_sample(prefect_harness, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("AFFORD_DATA_ROOT", str(tmp_path / "data"))
    labelled = tmp_path / "tables" / "affordpose"
    write_table(labelled, sample_dicts(4, num_points=16), Sample)
    rows = sample_dicts(3, start=50, num_points=16)
    for row in rows:
        row.update(dataset="oakink", affordance=None, sample_id=row["sample_id"].replace("affordpose", "oakink", 1))
    target = tmp_path / "tables" / "oakink"
    write_table(target, rows, Sample)
    labels = tmp_path / "tables" / "affordance_labels"
    write_table(labels, [AffordanceLabel(sample_id=rows[0]["sample_id"], stage_version="t", dataset="oakink",
                                         affordance="twist", origin="validated", cycle=0, confidence=0.9,
                                         checkpoint_sha256="b" * 64)], AffordanceLabel)
    caplog.set_level(logging.INFO)
    report = instruct(tables=[str(labelled), str(target)], out_table=str(tmp_path / "tables" / "instructions"),
                      labels_table=str(labels), generator="template", k=2)
    out = {r.sample_id: r for r in open_table(tmp_path / "tables" / "instructions", InstructionRow).iter_rows()}
    # 4 labelled + the one target sample that self-training labelled; the other two have no affordance yet.
    assert len(out) == 5 and rows[0]["sample_id"] in out and rows[1]["sample_id"] not in out
    assert out[rows[0]["sample_id"]].affordance == "twist"
    assert {r.generator for r in out.values()} == {"template"} and all(r.instruction for r in out.values())
    assert np.all([r.variant in (0, 1) for r in out.values()])
    assert "## Instructions" in report and "5 instructions" in report
    # a line per generated key, with how many are left: a person sees the stage move
    assert "instructions: key 1/" in caplog.text and "s left" in caplog.text and "[#" in caplog.text
