"""The affordance stage's report and figure helpers."""

import numpy as np

from tasks.affordance.evaluation import Evaluation
from tasks.affordance.maps import evaluation_report, wrong_instruction
from tasks.affordance.metrics import sample_metrics


def test_wrong_instruction_asks_for_an_action_the_object_lacks() -> None:
    affordance, text = wrong_instruction("mug", {"handle-grasp", "wrap-grasp"})
    assert affordance == "twist" and "mug" in text.lower()
    affordance, _ = wrong_instruction("bottle", {"twist", "press", "wrap-grasp"})
    assert affordance == "lever"


def test_report_has_the_three_tables_and_matching_numbers() -> None:
    gt = np.array([1, 1, 0, 0], np.float32)
    metrics = [sample_metrics(np.array([0.9, 0.8, 0.1, 0.2]), gt), sample_metrics(np.array([0.9, 0.1, 0.1, 0.2]), gt)]
    evaluation = Evaluation(metrics, ["mug", "knife"], ["press", "press"], ["a", "b"], [0, 1],
                            np.zeros((2, 4), np.float32))
    markdown, numbers = evaluation_report(evaluation)
    assert "### Overall" in markdown and "layout of Table 7" in markdown and "layout of Table 8" in markdown
    assert numbers["overall"]["IoU"] == (1.0 + 0.5) / 2 and numbers["per_class"]["knife"]["IoU"] == 0.5
    assert set(numbers["per_action"]) == {"press"} and "nan" not in markdown.lower()


def test_report_without_held_out_objects_says_so() -> None:
    empty = Evaluation([], [], [], [], [], np.zeros((0, 4), np.float32))
    markdown, numbers = evaluation_report(empty)
    assert "No held-out objects" in markdown and numbers["overall"]["n"] == 0
