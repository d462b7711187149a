"""The nine affordance classes and the label ids the datasets use for them."""

from __future__ import annotations

from typing import Literal, get_args

# Classifier index order: no_affordance first, then the eight actions as listed in the paper.
AffordanceName = Literal[
    "no_affordance",
    "handle-grasp",
    "press",
    "lift",
    "wrap-grasp",
    "twist",
    "support",
    "pull",
    "lever",
]
AFFORDANCES: tuple[str, ...] = get_args(AffordanceName)
NUM_AFFORDANCES = len(AFFORDANCES)

# AffordPose's per-vertex label ids (the 5th token of an object OBJ `v` line). Id 2 is unused there.
AFFORDPOSE_LABEL_IDS: dict[int, str] = {
    0: "no_affordance",
    1: "handle-grasp",
    3: "press",
    4: "lift",
    5: "wrap-grasp",
    6: "twist",
    7: "support",
    8: "pull",
    9: "lever",
}


def affordance_index(name: str) -> int:
    """Classifier index (0..8) of an affordance name; accepts AffordPose's spelling ("Handle-grasp")."""
    key = name.strip().lower().replace("_", "-")
    key = "no_affordance" if key == "no-affordance" else key
    try:
        return AFFORDANCES.index(key)
    except ValueError:
        raise ValueError(f"unknown affordance {name!r}; expected one of {', '.join(AFFORDANCES)}") from None


def normalise_affordance(name: str) -> str:
    """Canonical spelling of an affordance name, e.g. "Wrap-grasp" -> "wrap-grasp"."""
    return AFFORDANCES[affordance_index(name)]

# AffordPose's 13 object classes, the vocabulary instructions and per-class tables are keyed on.
OBJECT_CLASSES: tuple[str, ...] = (
    "bag", "bottle", "dispenser", "earphone", "faucet", "handle-bottle", "jar",
    "keyboard", "knife", "laptop", "mug", "pot", "scissors",
)
