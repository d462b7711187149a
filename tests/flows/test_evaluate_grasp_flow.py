"""The evaluate_grasp flow end to end on tiny generators (DAM heads 1, 2 and 4, trained a few steps on the synthetic
annotated table): every Table 9 column for each (dataset, heads) row, the Table 5 rows, the grasp grid PNG, and
metrics.json numbers finite or explicitly 'n/a' / 'failed'; objects without a mesh counted; ACC from the
classifier that <data_root>/current/classifier.json names, n/a without one."""

import json
import math
from types import SimpleNamespace

import pytest

import flows.evaluate_grasp
from flows.evaluate_grasp import evaluate_grasp
from models.point_bert import PointBertConfig, PointTransformer
from models.point_bert_checkpoint import save_checkpoint
from schemas.data_root import DataRoot
from tasks.grasp.evaluation.report import TABLE9_COLUMNS
from tasks.grasp.evaluation.summary import default_classifier, grid_picks, plain
from tasks.grasp.sample import load_grasp_generator
from tasks.ingest.delta import save_classifier_state
from tests.grasp_factories import fake_embed, single_thread, write_annotated
from tests.tasks.grasp.evaluation.test_inputs import train_tiny, write_samples

TINY_CLASSIFIER = PointBertConfig(trans_dim=32, depth=1, drop_path_rate=0.0, num_heads=2, group_size=8, num_group=8,
                                 encoder_dims=32, num_points=64)


@pytest.fixture(autouse=True)
def _one_thread():
    yield from single_thread()


def _finite_or_marked(value) -> bool:
    if isinstance(value, str):
        return value in ("n/a", "failed") or not value.replace(".", "").isdigit()
    return value is None or isinstance(value, bool) or math.isfinite(value)


def write_classifier_state(data_root):
    """A fresh tiny classifier, recorded in <data_root>/current/classifier.json as self_training does."""
    checkpoint = data_root / "self_training" / "cycle-1" / "checkpoints" / "point_bert-1.pt"
    checkpoint.parent.mkdir(parents=True)
    sha = save_checkpoint(PointTransformer(TINY_CLASSIFIER), TINY_CLASSIFIER, checkpoint)
    save_classifier_state(DataRoot(data_root).current("classifier"), checkpoint, sha, "threshold", 0.5, 1, None)
    return checkpoint


def test_default_classifier_and_plain_values(tmp_path):
    write_annotated(tmp_path / "tables" / "annotated", n=3, affordpose=0, other_split=0)  # a link to its version
    assert default_classifier(tmp_path / "tables" / "annotated") is None
    checkpoint = write_classifier_state(tmp_path)
    assert default_classifier(tmp_path / "tables" / "annotated") == checkpoint.absolute()
    checkpoint.write_bytes(checkpoint.read_bytes() + b"changed")
    with pytest.raises(ValueError, match="sha256 differs"):
        default_classifier(tmp_path / "tables" / "annotated")
    assert (plain(None), plain(float("nan")), plain(1.5), plain(3)) == ("n/a", "failed", 1.5, 3)


def test_grid_draws_the_largest_head_count_taking_objects_from_the_datasets_in_turn():
    grasps = [SimpleNamespace(dataset=d, object_id=o, dam_heads=h)
              for h in (1, 4) for d in ("a", "b") for o in ("obj0", "obj1") for _ in range(2)]
    picks = grid_picks(grasps, objects=2)
    assert {(grasps[i].dataset, grasps[i].object_id, grasps[i].dam_heads) for i in picks} == {
        ("a", "obj0", 4), ("b", "obj0", 4)}  # same object id, two datasets: two objects
    assert len(picks) == 4
    truth = [SimpleNamespace(dataset=d, object_id=o, dam_heads=0, method="ground_truth")
             for d in ("a", "b") for o in ("obj0", "obj1")]
    picks = grid_picks(grasps + truth, objects=4, method="ground_truth", only={("b", "obj1"), ("a", "obj0")})
    assert sorted((truth[i - len(grasps)].dataset, truth[i - len(grasps)].object_id) for i in picks) == [
        ("a", "obj0"), ("b", "obj1")]  # a baseline's grasps of just the objects the model's grid shows
    assert grid_picks(grasps, objects=2, method="retrieval") == []


@pytest.mark.server
@pytest.mark.slow
def test_evaluate_grasp_flow_writes_the_full_report(prefect_harness, tmp_path, monkeypatch):
    monkeypatch.setattr(flows.evaluate_grasp, "sentence_embedder", lambda: fake_embed)  # saves the encoder load
    tables = tmp_path / "tables"
    rows = write_annotated(tables / "annotated", n=6, affordpose=2, other_split=1)
    write_samples(tables, rows, skip_objects=("obj3",))
    write_classifier_state(tmp_path)  # tables/ sits in tmp_path: the data root
    checkpoints = {h: str(train_tiny(rows, tmp_path / f"heads{h}", heads=h)) for h in (1, 2, 4)}
    out = tmp_path / "eval"
    report = evaluate_grasp(annotated_table=str(tables / "annotated"), checkpoints=checkpoints, out_dir=str(out),
                            objects_per_dataset=2, grasps_per_object=2, workers=2, speed_batch=2, tto_steps=3,
                            grid_objects=2)

    lines = [line for line in report.splitlines() if line.startswith("| ")]
    header = lines[0]
    for column, *_ in TABLE9_COLUMNS:
        assert column in header
    table9 = [line for line in lines if line.count("|") == header.count("|") and line != header]
    assert len(table9) >= 6  # (affordpose, oakink) x heads (1, 2, 4)
    metrics = json.loads((out / "metrics.json").read_text())
    assert sorted((g["dataset"], g["dam_heads"]) for g in metrics["table9"]) == [
        (d, h) for d in ("affordpose", "oakink") for h in (1, 2, 4)]
    for group in metrics["table9"]:
        assert 0 <= group["acc_percent"] <= 100  # the self_training classifier, found without being named
        assert group["num_grasps"] == (2 if group["dataset"] == "affordpose" else 4)
        assert all(_finite_or_marked(v) for v in group.values())
    assert [r["method"] for r in metrics["table5"]] == ["Test-time optimisation (3 Adam steps)", "Ours (one pass)"]
    assert all(r["single_s"] > 0 and r["batched_s"] > 0 for r in metrics["table5"])
    assert "| Single (s / grasp) |" in report and "| Batched, 2 (s / grasp) |" in report
    assert metrics["objects"]["without_mesh"] == {"affordpose": 1, "oakink": 1}
    assert metrics["grasps"] == 18 and metrics["grasps_per_s_end_to_end"] > 0
    assert "ACC: affordance predicted by" in report and "point_bert-1.pt" in metrics["classifier"]
    assert (out / "grasps.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "report.md").read_text().startswith("## Grasp generator evaluation")
    # the sampler ran with the checkpoints' own settings, and the report says which
    trained = load_grasp_generator(checkpoints[4], "cpu").train_config
    assert metrics["sampling"] == {"guidance": trained.guidance, "ddim_steps": trained.ddim_steps,
                                   "from": "guidance training config, ddim_steps training config"}
    assert f"Sampling: DDIM {trained.ddim_steps} steps, guidance {trained.guidance}" in report


@pytest.mark.server
@pytest.mark.slow
def test_baselines_share_table9_with_the_model(prefect_harness, tmp_path, monkeypatch):
    monkeypatch.setattr(flows.evaluate_grasp, "sentence_embedder", lambda: fake_embed)
    tables = tmp_path / "tables"
    rows = write_annotated(tables / "annotated", n=8, affordpose=2, other_split=1)
    write_samples(tables, rows)
    out = tmp_path / "eval"
    report = evaluate_grasp(annotated_table=str(tables / "annotated"),
                            checkpoints={2: str(train_tiny(rows, tmp_path / "heads2", heads=2))}, out_dir=str(out),
                            objects_per_dataset=2, grasps_per_object=2, workers=1, speed_batch=2, tto_steps=2,
                            grid_objects=2, baselines=["tta", "retrieval", "ground_truth"], guidance=0.5,
                            ddim_steps=4)
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["sampling"]["guidance"], metrics["sampling"]["ddim_steps"]) == (0.5, 4)  # given, not trained
    methods = {(g["dataset"], g["method"]) for g in metrics["table9"]}
    wanted = {("oakink", "model"), ("oakink", "tta"), ("oakink", "retrieval"), ("oakink", "ground_truth"),
              ("affordpose", "model")}
    assert wanted <= methods
    # AffordPose rows carry no MANO parameters: no grasp of theirs can be placed, and the report says so by object
    assert ("affordpose", "ground_truth") not in methods and metrics["baselines_left_out"]["ground_truth"]
    assert "| Dataset | Method | DAM heads |" in report and "| ground truth | - |" in report
    assert "| test-time optimisation | 2 |" in report  # the 2-head model's grasps, refined
    # the model's grid (an AffordPose and an OakInk object), and the same objects' own grasps (OakInk's only)
    assert (out / "grasps_ground_truth.png").read_bytes()[:4] == b"\x89PNG"
    assert metrics["ground_truth_grid"] == str((out / "grasps_ground_truth.png").absolute())
    assert "The same objects' ground-truth grasps:" in report
    assert "ground_truth: affordpose/" in report and "left out (ground_truth: no grasps of this object" in report


@pytest.mark.server
def test_evaluate_grasp_refuses_bad_parameters_by_name(prefect_harness, tmp_path):
    write_annotated(tmp_path / "annotated", n=3, affordpose=0, other_split=0)
    with pytest.raises(ValueError, match="checkpoints: heads 3"):
        evaluate_grasp(annotated_table=str(tmp_path / "annotated"), checkpoints={3: str(tmp_path / "a.pt")},
                       out_dir=str(tmp_path / "o"))
    with pytest.raises(ValueError, match="baselines: 'nearest' is not one of tta, retrieval, ground_truth"):
        evaluate_grasp(annotated_table=str(tmp_path / "annotated"), checkpoints={1: str(tmp_path / "a.pt")},
                       out_dir=str(tmp_path / "o"), baselines=["retrieval", "nearest"])
    for bad, named in (({"guidance": -1.0}, "guidance must be a finite number >= 0, got -1.0"),
                       ({"guidance": float("nan")}, "guidance must be a finite number >= 0, got nan"),
                       ({"ddim_steps": 0}, "ddim_steps must be >= 1, got 0")):
        (tmp_path / "h.pt").write_bytes(b"refused before it is read")
        with pytest.raises(ValueError, match=named):
            evaluate_grasp(annotated_table=str(tmp_path / "annotated"), checkpoints={1: str(tmp_path / "h.pt")},
                           out_dir=str(tmp_path / "o"), **bad)
    with pytest.raises(ValueError, match="no such file"):
        evaluate_grasp(annotated_table=str(tmp_path / "annotated"), checkpoints={1: str(tmp_path / "a.pt")},
                       out_dir=str(tmp_path / "o"))
