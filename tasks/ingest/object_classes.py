"""Object class of a dataset's object name, in AffordPose's vocabulary where the name says which.

GRAB names objects by what they are ("mug", "wineglass"), HO-3D by YCB id ("006_mustard_bottle"), and a
dataset with several objects of one kind numbers them ("mug2"). Instructions, review strata and per-class
tables are keyed on the class, so these must collapse to one class per kind of object, or every object
becomes its own class and each costs its own LLM call.

Rule, in order: lower-case; drop a leading YCB number ("006_"); if the name with its separators and digits
removed ends with an AffordPose class (longest first, so "handlebottle" wins over "bottle"), that class;
otherwise the cleaned name itself ("bleach_cleanser", "wineglass"), never an invented class.
"""

from __future__ import annotations

import re

from schemas.affordance import OBJECT_CLASSES

# letters-only spelling -> class, longest first so that a longer class wins over its own suffix
_BY_LETTERS: tuple[tuple[str, str], ...] = tuple(sorted(
    ((re.sub(r"[^a-z]", "", c), c) for c in OBJECT_CLASSES), key=lambda pair: -len(pair[0])))


def object_class(name: str) -> str:
    """AffordPose class of an object name ("grmug000" -> "mug", "006_mustard_bottle" -> "bottle"), else the
    cleaned name ("003_cracker_box" -> "cracker_box"). ValueError naming the value when it is empty."""
    cleaned = re.sub(r"^\d+_", "", name.strip().lower())
    if not cleaned:
        raise ValueError(f"object name {name!r} is empty")
    letters = re.sub(r"[^a-z]", "", cleaned)
    for spelling, cls in _BY_LETTERS:
        if letters.endswith(spelling):
            return cls
    return cleaned
