import numpy as np
import pytest
from pydantic import ValidationError

from schemas.affordance import AFFORDANCES, AFFORDPOSE_LABEL_IDS, affordance_index, normalise_affordance
from schemas.ids import hash_bytes, hash_file, make_sample_id
from schemas.rows import Reject, Sample
from schemas.text import bounded_reason
from tests.factories import sample_dicts


def test_sample_ids_are_stable_and_distinct():
    a = make_sample_id("oakink", "mug/001/grasp_0/hand_param.pkl", 0)
    assert a == make_sample_id("oakink", "mug/001/grasp_0/hand_param.pkl", 0)
    assert a.startswith("oakink-") and len(a) == len("oakink-") + 16
    assert a != make_sample_id("oakink", "mug/001/grasp_0/hand_param.pkl", 1)
    assert a != make_sample_id("grab", "mug/001/grasp_0/hand_param.pkl", 0)


def test_sample_id_refuses_absolute_paths_and_negative_index():
    with pytest.raises(ValueError, match="relative"):
        make_sample_id("grab", "/abs/file.npz")
    with pytest.raises(ValueError, match="index"):
        make_sample_id("grab", "s1/a.npz", -1)


def test_content_hash_changes_with_bytes(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    first = hash_file(path)
    assert first == hash_bytes(b"a", b"bc")
    path.write_bytes(b"abd")
    assert hash_file(path) != first


def test_affordance_names_and_label_ids():
    assert len(AFFORDANCES) == 9 and AFFORDANCES[0] == "no_affordance"
    assert normalise_affordance("Handle-grasp") == "handle-grasp"
    assert affordance_index("Wrap-grasp") == AFFORDANCES.index("wrap-grasp")
    assert 2 not in AFFORDPOSE_LABEL_IDS and set(AFFORDPOSE_LABEL_IDS.values()) == set(AFFORDANCES)
    with pytest.raises(ValueError, match="unknown affordance 'juggle'"):
        affordance_index("juggle")


def test_sample_normalises_affordance_and_keeps_version():
    row = Sample.model_validate(sample_dicts(1, affordance="Wrap-grasp")[0])
    assert row.affordance == "wrap-grasp"
    assert Sample.SCHEMA_VERSION >= 1 and Sample.TABLE_KEY == ("sample_id",)


@pytest.mark.parametrize(("change", "field_or_text"), [
    ({"hand_pose": np.zeros(47)}, "hand_pose"),
    ({"hand_betas": np.full(10, np.nan)}, "hand_betas"),
    ({"split": "training"}, "split"),
    ({"content_hash": "abc"}, "content_hash"),
    ({"sample_id": "no id"}, "sample_id"),
    ({"affordance": "juggle"}, "affordance"),
    ({"object_points": np.zeros((0, 3))}, "object_points is empty"),
    ({"hand_pose": None, "hand_verts": None}, "needs hand_pose"),
    ({"object_point_labels": np.zeros(3, np.int8)}, "object_point_labels has 3 entries"),
    ({"object_vertices": np.zeros((4, 3)), "object_faces": np.array([[0, 1, 4]])}, "object_faces index"),
    ({"unexpected": 1}, "unexpected"),
])
def test_invalid_samples_name_the_field(change, field_or_text):
    with pytest.raises(ValidationError) as info:
        Sample.model_validate(sample_dicts(1)[0] | change)
    assert field_or_text in str(info.value)


def test_hand_as_mesh_only_is_valid():
    row = sample_dicts(1, hand_pose=None, hand_betas=None, hand_trans=None,
                       hand_verts=np.zeros((778, 3)))[0]
    assert Sample.model_validate(row).hand_pose is None


def test_reject_has_a_composite_key_and_a_timestamp():
    reject = Reject(sample_id=make_sample_id("grab", "s1/x.npz"), stage_version="1", stage="ingest",
                    source="s1/x.npz", reason="hand_pose: NaN", field="hand_pose")
    assert Reject.TABLE_KEY == ("stage", "sample_id")
    assert reject.created_at.tzinfo is not None


def test_a_huge_reject_reason_is_cut_to_its_head_naming_the_file():
    reason = "dataset/0042.json: field rhand_mesh: cannot parse " + "v 1 2 3\n" * (50 * 2**20 // 8)
    reject = Reject(sample_id=make_sample_id("affordpose", "dataset/0042.json"), stage_version="1",
                    stage="ingest", source="dataset/0042.json", reason=reason, field="rhand_mesh")
    assert len(reject.reason) <= 500
    assert reject.reason.startswith("dataset/0042.json: field rhand_mesh: cannot parse v 1 2 3\\nv 1 2 3")
    head, tail = reject.reason.rsplit("... (", 1)
    kept = len(head.replace("\\n", "\n"))  # characters of the reason the head shows, newlines unescaped
    assert tail == f"{len(reason) - kept} more characters)"


def test_control_characters_in_a_reject_are_escaped():
    reject = Reject(sample_id=make_sample_id("grab", "s1/x.npz"), stage_version="1", stage="ingest",
                    source="s1/\x1b[2Jx.npz", reason="s1/x.npz: field hand_pose: \x1b[31mred\x07\u202e\x00 end",
                    field="hand\npose")
    assert reject.reason == "s1/x.npz: field hand_pose: \\x1b[31mred\\x07\\u202e\\x00 end"
    assert reject.source == "s1/\\x1b[2Jx.npz" and reject.field == "hand\\npose"
    assert all(ch.isprintable() for ch in reject.reason + reject.source + reject.field)


def test_bounded_reason_keeps_short_text_and_counts_what_it_cut():
    assert bounded_reason("a.json: field x: bad") == "a.json: field x: bad"
    cut = bounded_reason("a.json: " + "z" * 1000, limit=100)
    assert len(cut) <= 100 and cut.startswith("a.json: zzz")
    assert cut.endswith(f"({1008 - cut.index('...')} more characters)")
    cut = bounded_reason("\x01" * 600)  # escapes take four characters each: the limit counts what is shown
    assert len(cut) <= 500 and cut.startswith("\\x01\\x01")
    with pytest.raises(ValueError, match="limit must be >= 40"):
        bounded_reason("x", limit=5)
