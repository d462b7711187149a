"""How much reviewers agree: Cohen's kappa between two reviewers, and each reviewer's agreement with the majority.

Input is one label per (item, reviewer) for the items that more than one reviewer decided (the overlap share of
a queue). A label is whatever the decision says about the item, as a string: "accept", "reject", or the class a
relabel names. Skips are not labels and are left out before this point.

- Cohen's kappa of reviewers a and b over the n items both decided: p_o is the share of those items they label
  alike; p_e = sum_c (n_a(c) / n) (n_b(c) / n), the agreement two reviewers with those label frequencies would
  reach by chance; kappa = (p_o - p_e) / (1 - p_e). When p_e = 1 (both always gave one and the same label),
  kappa is undefined: None, as scikit-learn's `cohen_kappa_score` gives NaN.
- Majority: the label more than half of an item's reviewers gave. An item without one is disputed, and stays
  unresolved until another reviewer decides it.
- Agreement with the majority, per reviewer: over the overlapping items they decided that have a majority, the
  share where their label is the majority's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

Labels = Mapping[str, Mapping[str, str]]  # {item: {reviewer: label}}


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two equally long label sequences (item i labelled a[i] and b[i]); None when undefined."""
    if len(a) != len(b):
        raise ValueError(f"label sequences differ in length: {len(a)} and {len(b)}")
    if not a:
        raise ValueError("cohen_kappa needs at least one item both reviewers labelled")
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    count_a, count_b = Counter(a), Counter(b)
    expected = sum(count_a[c] * count_b[c] for c in count_a) / (n * n)
    if expected == 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def majority(labels: Mapping[str, str]) -> str | None:
    """The label more than half of the reviewers gave, or None (a disputed item)."""
    if not labels:
        return None
    label, count = Counter(labels.values()).most_common(1)[0]
    return label if 2 * count > len(labels) else None


@dataclass(frozen=True)
class PairKappa:
    reviewers: tuple[str, str]
    items: int  # decided by both
    kappa: float | None


@dataclass(frozen=True)
class ReviewerAgreement:
    reviewer: str
    items: int  # overlapping items this reviewer decided that have a majority
    agreed: int

    @property
    def share(self) -> float | None:
        return self.agreed / self.items if self.items else None


def pair_kappas(labels: Labels) -> list[PairKappa]:
    """Kappa for every pair of reviewers who decided at least one item in common, pairs in name order."""
    reviewers = sorted({r for by in labels.values() for r in by})
    pairs = []
    for first, second in combinations(reviewers, 2):
        common = [by for by in labels.values() if first in by and second in by]
        if common:
            pairs.append(PairKappa((first, second), len(common),
                                   cohen_kappa([by[first] for by in common], [by[second] for by in common])))
    return pairs


def agreement_with_majority(labels: Labels) -> list[ReviewerAgreement]:
    """Per reviewer (name order), agreement with the majority over overlapping items that have one."""
    items: Counter[str] = Counter()
    agreed: Counter[str] = Counter()
    for by in labels.values():
        if len(by) < 2:
            continue
        winner = majority(by)
        if winner is None:
            continue
        for reviewer, label in by.items():
            items[reviewer] += 1
            agreed[reviewer] += label == winner
    reviewers = sorted({r for by in labels.values() if len(by) >= 2 for r in by})
    return [ReviewerAgreement(r, items[r], agreed[r]) for r in reviewers]


def disputed(labels: Labels) -> list[str]:
    """Items decided by two or more reviewers without a majority label, sorted."""
    return sorted(item for item, by in labels.items() if len(by) >= 2 and majority(by) is None)


@dataclass(frozen=True)
class AgreementReport:
    """A cycle's reviewer agreement: items decided by two or more reviewers, per-reviewer agreement with the
    majority, kappa per pair, and the disputed items."""

    overlapping: int
    reviewers: list[ReviewerAgreement]
    pairs: list[PairKappa]
    disputed: list[str]

    def markdown(self) -> str:
        """Two Markdown tables and a line on disputed items (the app and the Prefect artifact show this)."""
        def number(value: float | None, spec: str) -> str:
            return "n/a" if value is None else format(value, spec)

        lines = [f"{self.overlapping} items decided by two or more reviewers; {len(self.disputed)} disputed "
                 f"(no majority: unresolved until another reviewer decides them).", "",
                 "| reviewer | items with a majority | agreed | agreement % |", "| --- | --- | --- | --- |"]
        lines += [f"| {r.reviewer} | {r.items} | {r.agreed} | "
                  f"{number(None if r.share is None else 100 * r.share, '.1f')} |" for r in self.reviewers]
        lines += ["", "| reviewers | items both decided | Cohen's kappa |", "| --- | --- | --- |"]
        lines += [f"| {p.reviewers[0]} / {p.reviewers[1]} | {p.items} | {number(p.kappa, '.3f')} |"
                  for p in self.pairs]
        return "\n".join(lines)


def agreement_report(labels: Labels) -> AgreementReport:
    """Everything above, for one cycle's labels."""
    return AgreementReport(overlapping=sum(len(by) >= 2 for by in labels.values()),
                           reviewers=agreement_with_majority(labels), pairs=pair_kappas(labels),
                           disputed=disputed(labels))
