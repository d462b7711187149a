"""Affordance accuracy (ACC) of generated grasps: does the pseudo-labelling classifier, shown the generated hand
with the object, predict the affordance the grasp was asked for?

The classifier sees exactly what it saw when pseudo-labelling (tasks/classifier_data.sample_cloud): the joint
hand + object cloud in the object frame, farthest-point sampled to the model's point count with seed 0, divided
by CLOUD_SCALE. ACC = 100 * mean(predicted == requested), in percent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from ops.joint_cloud import joint_cloud
from schemas.affordance import AFFORDANCES, affordance_index
from tasks.pseudo_label.classifier_data import CLOUD_SCALE
from tasks.pseudo_label.classifier_model import TrainResult, predict_logits

# (N, P, 3) float32 clouds in network units -> (N, C) logits over AFFORDANCES.
Classifier = Callable[[np.ndarray], np.ndarray]


class AccuracyResult(NamedTuple):
    acc_percent: float
    predicted: list[str]  # one affordance name per grasp


def accuracy(predicted: Sequence[str], requested: Sequence[str]) -> float:
    """Percent of grasps whose predicted affordance is the requested one (names in any accepted spelling)."""
    if len(predicted) != len(requested):
        raise ValueError(f"predicted has {len(predicted)} entries but requested has {len(requested)}")
    if len(predicted) == 0:
        raise ValueError("accuracy needs at least one grasp, got none")
    hits = [affordance_index(p) == affordance_index(r) for p, r in zip(predicted, requested, strict=True)]
    return 100.0 * float(np.mean(hits))


def grasp_clouds(hand_verts_list: Sequence[np.ndarray], object_points_list: Sequence[np.ndarray],
                 num_points: int) -> np.ndarray:
    """(N, num_points, 3) float32 classifier inputs. hand_verts_list: N x (778, 3) metres; object_points_list:
    N x (M, 3) metres, object frame (an object's surface samples, shared between its grasps if you like)."""
    if len(hand_verts_list) != len(object_points_list):
        raise ValueError(f"{len(hand_verts_list)} hands but {len(object_points_list)} objects")
    clouds = [joint_cloud(hand, obj, num_points).points / CLOUD_SCALE
              for hand, obj in zip(hand_verts_list, object_points_list, strict=True)]
    return np.stack(clouds).astype(np.float32) if clouds else np.zeros((0, num_points, 3), np.float32)


def _as_classifier(classifier: TrainResult | Classifier) -> tuple[Classifier, int | None]:
    if isinstance(classifier, TrainResult):
        model = classifier.model
        return (lambda points: predict_logits(model, points)), classifier.model_config.num_points
    return classifier, None


def affordance_accuracy(classifier: TrainResult | Classifier, hand_verts_list: Sequence[np.ndarray],
                        object_points_list: Sequence[np.ndarray], requested: Sequence[str],
                        num_points: int | None = None) -> AccuracyResult:
    """ACC of N generated grasps with the trained classifier (tasks.pseudo_label.classifier_train.load_trained)
    or any callable mapping (N, P, 3) clouds to (N, 9) logits. num_points: cloud size; defaults to the
    checkpoint's own."""
    predict, model_points = _as_classifier(classifier)
    num_points = num_points or model_points
    if num_points is None:
        raise ValueError("num_points is required with a plain classifier callable")
    logits = np.asarray(predict(grasp_clouds(hand_verts_list, object_points_list, num_points)))
    if logits.shape != (len(hand_verts_list), len(AFFORDANCES)):
        raise ValueError(f"classifier returned logits of shape {logits.shape}, "
                         f"expected ({len(hand_verts_list)}, {len(AFFORDANCES)})")
    predicted = [AFFORDANCES[i] for i in logits.argmax(1)]
    return AccuracyResult(accuracy(predicted, requested), predicted)
