"""object_class: dataset object names collapse to AffordPose classes where the name says which."""

import pytest

from tasks.ingest.object_classes import object_class


@pytest.mark.parametrize(("name", "expected"), [
    ("mug", "mug"), ("Mug", "mug"), ("grmug000", "mug"), ("mug2", "mug"),
    ("006_mustard_bottle", "bottle"), ("hohandlebottle000", "handle-bottle"), ("handle-bottle", "handle-bottle"),
    ("grhandlebottle012", "handle-bottle"), ("teapot", "pot"),
    ("003_cracker_box", "cracker_box"), ("021_bleach_cleanser", "bleach_cleanser"), ("wineglass", "wineglass"),
])
def test_object_names_map_to_classes(name: str, expected: str) -> None:
    assert object_class(name) == expected


@pytest.mark.parametrize("name", ["", "  ", "006_"])
def test_empty_name_is_refused_by_value(name: str) -> None:
    with pytest.raises(ValueError, match=r"object name .* is empty"):
        object_class(name)
