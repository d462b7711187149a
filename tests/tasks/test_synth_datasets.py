import pytest

from tasks.synth_datasets import synthesize_datasets


@pytest.mark.parametrize(("options", "message"), [
    ({"categories": ["spoon"]}, "categories: unknown \\['spoon'\\]"),
    ({"datasets": ["coco"]}, "datasets: expected a non-empty subset"),
    ({"datasets": []}, "datasets: expected a non-empty subset"),
    ({"objects_per_category": 0}, "objects_per_category must be >= 1"),
])
def test_bad_arguments_are_refused_before_writing_anything(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        synthesize_datasets(tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()
