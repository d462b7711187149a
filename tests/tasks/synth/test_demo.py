"""Synthesis -> ingestion of all four formats, with the demo's two deliberately broken inputs."""

import numpy as np
import pytest

from schemas.rows import Reject, Sample
from tasks.ingest.formats import FORMATS
from tasks.ingest.pipeline import check_counts, ingest
from tasks.store.read import open_table
from tasks.synth.datasets import synthesize_datasets
from tasks.synth.demo import break_two_inputs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    return synthesize_datasets(root, objects_per_category=1, seed=3, categories=["mug", "bottle"], steps=40)


def test_every_format_round_trips_through_its_loader(synthesized, tmp_path):
    for fmt in FORMATS:
        counts = ingest(fmt, synthesized.root / fmt, tmp_path / "tables" / fmt, synthesized.mano_root, num_points=256)
        assert (counts.inputs, counts.rows, counts.rejects) == (synthesized.grasps[fmt], synthesized.grasps[fmt], 0)
        rows = list(open_table(counts.table, Sample).iter_rows())
        assert all(r.hand_verts is not None and r.object_points.shape == (256, 3) for r in rows)
        # Canonical frame: object-centred, so the hand sits within a hand's length of the origin.
        assert all(np.linalg.norm(r.hand_verts.mean(0)) < 0.25 for r in rows)
        labelled = fmt == "affordpose"
        assert all((r.affordance is not None) == labelled for r in rows)
    check_counts([counts])


def test_broken_inputs_become_rejects_and_reruns_do_not_duplicate(synthesized, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(synthesized.root, root)
    damaged = break_two_inputs(root)
    tables = tmp_path / "tables"
    counts = {fmt: ingest(fmt, root / fmt, tables / fmt, root / "mano", num_points=128)
              for fmt in ("affordpose", "ho3d")}
    assert counts["affordpose"].rejects == 1 and counts["ho3d"].rejects == 1
    rejects = list(open_table(tables / "rejects", Reject).iter_rows())
    assert sorted(r.field for r in rejects) == ["handTrans", "json"]
    assert sorted(r.source for r in rejects) == sorted(p.split("/", 1)[1] for p in damaged)
    again = ingest("ho3d", root / "ho3d", tables / "ho3d", root / "mano", num_points=128)
    assert again.rows == counts["ho3d"].rows and open_table(tables / "ho3d").num_rows == counts["ho3d"].rows
    assert open_table(tables / "rejects").num_rows == 2
