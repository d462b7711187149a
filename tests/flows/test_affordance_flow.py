"""The affordance flow on toy tables at the tiny preset: trains, evaluates on held-out objects, maps every
target sample that has an instruction, writes the tables, figure and artifacts; a saved checkpoint reloads."""

import json

import numpy as np
import pytest

from flows.affordance import affordance
from schemas.affordance_map import AffordanceMapRow
from schemas.instruction import InstructionRow
from schemas.rows import Reject, Sample
from tasks.store.read import open_table
from tasks.store.write import write_table
from tests.factories import sample_dicts

pytestmark = pytest.mark.server


def _tables(root):
    labelled = sample_dicts(10, num_points=256)
    for row in labelled:  # top half wrap-grasp, bottom half press
        row["object_point_labels"] = np.where(row["object_points"][:, 2] > 0, 5, 3).astype(np.int8)
    labelled[0]["object_point_labels"] = None  # goes to rejects, named
    write_table(root / "affordpose", labelled, Sample)
    targets = sample_dicts(4, start=40, num_points=256)
    for row in targets:
        row.update(dataset="oakink", affordance=None, object_point_labels=None,
                   sample_id=row["sample_id"].replace("toy", "oakink", 1))
    write_table(root / "oakink", targets, Sample)
    instructions = [InstructionRow(sample_id=row["sample_id"], stage_version="t", dataset="oakink",
                                   object_class=row["object_category"], affordance="press",
                                   instruction=f"Press the {row['object_category']} firmly", variant=0,
                                   generator="template", model="template", prompt_version="t", fallback=False)
                    for row in targets[:3]]  # the fourth has no label, hence no instruction
    write_table(root / "instructions", instructions, InstructionRow)
    return labelled, targets


def test_affordance_flow_end_to_end(prefect_harness, tmp_path) -> None:
    tables = tmp_path / "tables"
    labelled, targets = _tables(tables)
    out = tmp_path / "affordance"
    report = affordance(labelled_table=str(tables / "affordpose"), target_tables=[str(tables / "oakink")],
                        out_dir=str(out), instructions_table=str(tables / "instructions"), preset="tiny", steps=30,
                        batch_size=4)
    maps = list(open_table(tables / "affordance_maps", AffordanceMapRow).iter_rows())
    assert sorted(m.sample_id for m in maps) == sorted(r["sample_id"] for r in targets[:3])
    assert all(m.probabilities.shape == (256,) and m.instruction.startswith("Press the") for m in maps)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["overall"]["n"] > 0 and set(metrics["per_action"]) == {"press", "wrap-grasp"}
    assert {m.checkpoint_sha256 for m in maps} == {metrics["checkpoint_sha256"]}
    rejects = [r for r in open_table(tables / "rejects", Reject).iter_rows() if r.stage == "affordance"]
    assert [r.sample_id for r in rejects] == [labelled[0]["sample_id"]] and "object_point_labels" in rejects[0].reason
    assert "Per object class (layout of Table 7)" in report and "Mapped 3 target samples" in report
    assert "1 without an instruction" in report
    assert (out / "figures" / "maps_three_instructions.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "metrics.md").read_text().startswith("## Affordance maps")

    again = affordance(labelled_table=str(tables / "affordpose"), target_tables=[str(tables / "oakink")],
                       out_dir=str(tmp_path / "reloaded"), instructions_table=str(tables / "instructions"),
                       maps_table=str(tmp_path / "maps2"), checkpoint=metrics["checkpoint"])
    reloaded = {m.sample_id: m.probabilities for m in open_table(tmp_path / "maps2", AffordanceMapRow).iter_rows()}
    for m in maps:  # the loaded checkpoint maps exactly as the run that trained it
        np.testing.assert_array_equal(reloaded[m.sample_id], m.probabilities)
    assert "loaded" in again
