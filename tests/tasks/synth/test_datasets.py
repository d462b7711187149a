import pytest

from tasks.synth.datasets import synthesize_datasets


@pytest.mark.parametrize(("options", "message"), [
    ({"categories": ["spoon"]}, "categories: unknown \\['spoon'\\]"),
    ({"datasets": ["coco"]}, "datasets: expected a non-empty subset"),
    ({"datasets": []}, "datasets: expected a non-empty subset"),
    ({"objects_per_category": 0}, "objects_per_category must be >= 1"),
    ({"grasps_per_part": {"affordpose": 0}}, "grasps_per_part must be >= 1, got 0 for affordpose"),
    ({"objects_per_category": {"coco": 2}}, r"objects_per_category: unknown datasets \['coco'\]"),
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
