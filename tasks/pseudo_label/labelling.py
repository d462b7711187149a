"""Pseudo-labelling: classifier logits -> confidence rule -> label rows; and the rules measured on held-out
labelled data treated as unlabelled.

Measurement protocol: the class statistics of the class-conditional rule are fitted on the validation split
(the correctly classified samples), then both rules are applied to the test split as if it were unlabelled.
Acceptance rate and precision of the accepted labels, overall and per predicted class, come from comparing
with the test split's true labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schemas.affordance import AFFORDANCES
from schemas.rows import PseudoLabel
from tasks.pseudo_label.classifier_data import Clouds
from tasks.pseudo_label.confidence_filter import (
    DEFAULT_K,
    ClassStats,
    DefaultChoice,
    RuleReport,
    apply_rule,
    choose_default,
    evaluate_rule,
    fit_class_stats,
    softmax,
)

STAGE_VERSION = "pseudo-label-1"


@dataclass
class RuleMeasurement:
    stats: ClassStats | None  # None when the held-out split had too few correct predictions to fit them
    reports: dict[str, RuleReport]
    choice: DefaultChoice


def measure_rules(val_logits: np.ndarray, val_labels: np.ndarray, test_logits: np.ndarray,
                  test_labels: np.ndarray, k: float = DEFAULT_K, min_precision: float = 0.97) -> RuleMeasurement:
    """Fit on validation, apply both rules to test as if unlabelled, report and pick the default rule.

    A weak classifier may leave too few correct validation predictions to fit the class statistics; then only
    the logit z-score rule is measured, and the choice says so instead of the run failing.
    """
    try:
        stats = fit_class_stats(softmax(val_logits), val_labels, k=k)
    except ValueError as exc:
        stats, unfitted = None, str(exc)
    reports = {}
    for name in ("class_conditional", "logit_zscore"):
        if name == "class_conditional" and stats is None:
            continue
        result = apply_rule(name, test_logits, stats, k)
        reports[name] = evaluate_rule(result.accepted, result.predicted, test_labels, rule=name, k=k)
    try:
        choice = choose_default(reports, min_precision)
    except ValueError as exc:  # no rule accepted any held-out sample
        choice = DefaultChoice(rule="logit_zscore", meets_min_precision=False,
                               reason=f"no rule could be measured ({exc}); logit_zscore needs no statistics")
    if stats is None:
        choice = DefaultChoice(rule="logit_zscore", meets_min_precision=choice.meets_min_precision,
                               reason=f"class statistics could not be fitted ({unfitted}); {choice.reason}")
    return RuleMeasurement(stats=stats, reports=reports, choice=choice)


def label_rows(clouds: Clouds, datasets: list[str], logits: np.ndarray, rule: str, stats: ClassStats | None,
               k: float, cycle: int, checkpoint_sha256: str) -> list[PseudoLabel]:
    """One PseudoLabel per cloud. logits: (N, 9); datasets: (N,) dataset name per sample."""
    if len(datasets) != len(clouds) or len(logits) != len(clouds):
        raise ValueError(f"{len(clouds)} clouds, {len(datasets)} datasets and {len(logits)} logits must agree")
    result = apply_rule(rule, logits, stats, k)
    probabilities = softmax(logits)
    return [PseudoLabel(sample_id=sample_id, stage_version=STAGE_VERSION, cycle=cycle, dataset=datasets[i],
                        predicted=AFFORDANCES[int(result.predicted[i])], probabilities=probabilities[i],
                        confidence=float(result.confidence[i]), score=float(result.score[i]),
                        threshold=float(result.threshold[i]), accepted=bool(result.accepted[i]),
                        rule=f"{rule}(k={k:g})", checkpoint_sha256=checkpoint_sha256)
            for i, sample_id in enumerate(clouds.sample_ids)]
