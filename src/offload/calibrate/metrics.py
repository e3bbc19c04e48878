"""Calibration arithmetic: per-item scores, aggregate measures, bootstrap intervals, gate errors.

Pure functions over plain values, so every figure ``offload calibrate`` prints can be checked by
hand. Scores are in [0, 1]; 1 means "as good as the yardstick" (the expected output when the
samples carry one, else the reference model's answer).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

BOOTSTRAP_ROUNDS = 2000
CONFIDENCE = 0.95


def norm_label(value: Any) -> str:
    """A label compared the way classify normalises it: trimmed, case-folded."""
    if isinstance(value, Mapping):
        value = value.get("label", "")
    return str(value).strip().casefold()


def label_score(predicted: Any, expected: Any) -> float:
    """1.0 when the labels match, else 0.0."""
    return 1.0 if norm_label(predicted) == norm_label(expected) else 0.0


def accuracy(predicted: Sequence[Any], expected: Sequence[Any]) -> float:
    """Share of items whose label matches (0.0 for no items)."""
    if not predicted:
        return 0.0
    return sum(label_score(p, e) for p, e in zip(predicted, expected, strict=True)) / len(predicted)


def macro_f1(predicted: Sequence[Any], expected: Sequence[Any]) -> float:
    """F1 per label (over every label that is expected or predicted), averaged unweighted."""
    pred = [norm_label(p) for p in predicted]
    gold = [norm_label(e) for e in expected]
    labels = sorted(set(gold) | set(pred))
    if not labels:
        return 0.0
    total = 0.0
    for label in labels:
        tp = sum(1 for p, g in zip(pred, gold, strict=True) if p == label and g == label)
        fp = sum(1 for p, g in zip(pred, gold, strict=True) if p == label and g != label)
        fn = sum(1 for p, g in zip(pred, gold, strict=True) if p != label and g == label)
        total += f1(tp, fp, fn)
    return total / len(labels)


def f1(tp: int, fp: int, fn: int) -> float:
    """F1 from counts; 1.0 when there was nothing to find and nothing was found."""
    if tp == fp == fn == 0:
        return 1.0
    return 2 * tp / (2 * tp + fp + fn)


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Leaf fields of a JSON value as ``path -> canonical value`` (lists keep their order)."""
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list):
        out = {}
        for i, inner in enumerate(value):
            out.update(flatten(inner, f"{prefix}[{i}]"))
        return out
    if value is None:
        return {}
    if isinstance(value, str):
        return {prefix: value.strip().casefold()}
    return {prefix: json.dumps(value)}


@dataclass(frozen=True)
class FieldCounts:
    """Field-level matches of one extraction against its yardstick."""

    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        """Share of extracted fields that are right."""
        return 1.0 if self.tp + self.fp == 0 else self.tp / (self.tp + self.fp)

    @property
    def recall(self) -> float:
        """Share of expected fields that were extracted right."""
        return 1.0 if self.tp + self.fn == 0 else self.tp / (self.tp + self.fn)

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        return f1(self.tp, self.fp, self.fn)


def field_counts(predicted: Any, expected: Any) -> FieldCounts:
    """Compare leaf fields: a field is right when its path and value both match."""
    pred, gold = flatten(predicted), flatten(expected)
    tp = sum(1 for path, value in pred.items() if gold.get(path) == value)
    return FieldCounts(tp=tp, fp=len(pred) - tp, fn=len(gold) - tp)


def sum_counts(counts: Sequence[FieldCounts]) -> FieldCounts:
    """Micro totals over many items."""
    return FieldCounts(sum(c.tp for c in counts), sum(c.fp for c in counts), sum(c.fn for c in counts))


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean (0.0 for no values)."""
    return sum(values) / len(values) if values else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) by linear interpolation (0.0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def bootstrap_ci(
    n: int,
    statistic: Callable[[Sequence[int]], float],
    *,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over ``n`` items resampled with replacement.

    ``statistic`` receives the resampled item indices. Seeded, so a report is reproducible.
    """
    if n == 0:
        return 0.0, 0.0
    rng = random.Random(seed)
    stats = sorted(statistic([rng.randrange(n) for _ in range(n)]) for _ in range(rounds))
    tail = (1 - confidence) / 2
    return percentile(stats, tail * 100), percentile(stats, (1 - tail) * 100)


def mean_ci(scores: Sequence[float], **options: Any) -> tuple[float, float]:
    """Bootstrap interval of the mean of ``scores``."""
    return bootstrap_ci(len(scores), lambda idx: mean([scores[i] for i in idx]), **options)


@dataclass(frozen=True)
class GateErrors:
    """How the quality gate's verdicts line up with the measured scores."""

    false_accepts: int
    """Answers the gate passed that scored below the threshold."""
    false_rejects: int
    """Answers the gate failed that scored at or above the threshold."""
    bad: int
    """Answers below the threshold."""
    good: int
    """Answers at or above the threshold."""

    @property
    def false_accept_rate(self) -> float:
        """Share of bad answers the gate let through."""
        return self.false_accepts / self.bad if self.bad else 0.0

    @property
    def false_reject_rate(self) -> float:
        """Share of good answers the gate sent up the chain."""
        return self.false_rejects / self.good if self.good else 0.0


def gate_errors(passed: Sequence[bool], scores: Sequence[float], threshold: float) -> GateErrors:
    """Compare gate verdicts with scores (an answer is good when its score ≥ ``threshold``)."""
    fa = fr = bad = good = 0
    for ok, score in zip(passed, scores, strict=True):
        if score >= threshold:
            good += 1
            fr += not ok
        else:
            bad += 1
            fa += ok
    return GateErrors(fa, fr, bad, good)
