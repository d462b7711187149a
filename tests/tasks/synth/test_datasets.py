import hashlib
from pathlib import Path

import pytest

from tasks.synth.datasets import synthesize_datasets


@pytest.mark.parametrize(("options", "message"), [
    ({"categories": ["spoon"]}, "categories: unknown \\['spoon'\\]"),
    ({"datasets": ["coco"]}, "datasets: expected a non-empty subset"),
    ({"datasets": []}, "datasets: expected a non-empty subset"),
    ({"objects_per_category": 0}, "objects_per_category must be >= 1"),
    ({"grasps_per_part": {"affordpose": 0}}, "grasps_per_part must be >= 1, got 0 for affordpose"),
    ({"objects_per_category": {"coco": 2}}, r"objects_per_category: unknown datasets \['coco'\]"),
    ({"workers": 0}, "workers must be >= 1, got 0"),
])
def test_bad_arguments_are_refused_before_writing_anything(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        synthesize_datasets(tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_sizes_can_differ_per_dataset(tmp_path):
    summary = synthesize_datasets(tmp_path / "out", objects_per_category={"affordpose": 2}, grasps_per_part={
        "affordpose": 2}, categories=["mug"], datasets=["affordpose", "oakink"], steps=2)
    # A mug has 3 graspable parts: 2 objects x 3 parts x 2 grasps against 1 x 3 x 1.
    assert summary.grasps == {"affordpose": 12, "oakink": 3}


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_files_do_not_depend_on_the_number_of_worker_processes(tmp_path):
    # Each object is refined from its own seed on one torch thread, so spreading objects over processes changes
    # nothing on disk: every file of all four formats, and the ground truth kept for the simulated reviewer.
    options = {"categories": ["mug", "knife"], "steps": 3, "seed": 5}
    one = synthesize_datasets(tmp_path / "one", workers=1, **options)
    two = synthesize_datasets(tmp_path / "two", workers=2, **options)
    assert one.grasps == two.grasps and sum(one.grasps.values()) > 0
    assert _digests(tmp_path / "one") == _digests(tmp_path / "two")


def test_candidates_keep_the_grasp_count_and_are_refused_below_one(tmp_path):
    # A mug has 3 graspable parts: 2 candidates per grasp still give 3 x 1 grasps, the steadier of each pair.
    summary = synthesize_datasets(tmp_path / "out", categories=["mug"], datasets=["grab"], steps=2, candidates=2)
    assert summary.grasps == {"grab": 3}
    with pytest.raises(ValueError, match="candidates must be >= 1, got 0 for grab"):
        synthesize_datasets(tmp_path / "bad", categories=["mug"], datasets=["grab"], candidates={"grab": 0})
    assert not (tmp_path / "bad").exists()
