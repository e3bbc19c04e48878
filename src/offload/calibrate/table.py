"""From scored items to the calibration table and its recommendation (pure, no I/O).

Each candidate's items are ``Scored``: its answer's score against the yardstick, whether the
quality gate passed it, latency, tokens and what it cost. ``summarize`` turns one candidate's
items into a ``Row`` of the table; ``recommend`` picks the cheapest chain whose quality clears
the bar at the lower bound of its 95% interval:

* ``[local]`` alone — every item served locally;
* ``[local, reference]`` with the gate — items the gate passes stay local, the rest escalate
  and get the reference's answer (and its cost);
* ``[reference]`` — the baseline, always considered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from offload.calibrate.metrics import GateErrors, gate_errors, mean, mean_ci, percentile
from offload.ledger.rows import usd


@dataclass(frozen=True)
class Scored:
    """One item as one model answered it."""

    id: str
    output: Any
    failed: bool
    passed: bool
    """The gate accepted the answer (never true for a failed item)."""
    score: float
    seconds: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_nusd: int = 0
    """What this model charged for the item (0 for local models)."""


@dataclass(frozen=True)
class Row:
    """One candidate's line in the table."""

    ref: str
    local: bool
    n: int
    failed: int
    quality: float
    ci: tuple[float, float]
    gate_pass_rate: float
    gate: GateErrors
    p50: float
    p95: float
    input_tokens: int
    output_tokens: int
    usd_per_1000: Decimal
    reference_usd_per_1000: Decimal
    measures: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` shape."""
        return {
            "ref": self.ref,
            "local": self.local,
            "items": self.n,
            "failed": self.failed,
            "quality": round(self.quality, 4),
            "ci95": [round(self.ci[0], 4), round(self.ci[1], 4)],
            "gate_pass_rate": round(self.gate_pass_rate, 4),
            "gate_false_accepts": self.gate.false_accepts,
            "gate_false_rejects": self.gate.false_rejects,
            "gate_false_accept_rate": round(self.gate.false_accept_rate, 4),
            "gate_false_reject_rate": round(self.gate.false_reject_rate, 4),
            "latency_p50_s": round(self.p50, 3),
            "latency_p95_s": round(self.p95, 3),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "usd_per_1000": str(self.usd_per_1000),
            "reference_usd_per_1000": str(self.reference_usd_per_1000),
            "measures": {k: round(v, 4) for k, v in self.measures.items()},
        }


def per_1000(nano: Sequence[int]) -> Decimal:
    """Mean nano-dollars per item, as dollars per 1,000 items."""
    if not nano:
        return Decimal(0)
    return (usd(sum(nano)) * 1000 / len(nano)).quantize(Decimal("0.0001"))


def summarize(
    ref: str,
    local: bool,
    items: Sequence[Scored],
    reference_cost: Mapping[str, int],
    threshold: float,
    measures: Mapping[str, float] | None = None,
) -> Row:
    """The table row of one candidate over its items (``reference_cost`` by item id)."""
    scores = [s.score for s in items]
    return Row(
        ref=ref,
        local=local,
        n=len(items),
        failed=sum(s.failed for s in items),
        quality=mean(scores),
        ci=mean_ci(scores),
        gate_pass_rate=mean([1.0 if s.passed else 0.0 for s in items]),
        gate=gate_errors([s.passed for s in items], scores, threshold),
        p50=percentile([s.seconds for s in items if not s.failed], 50),
        p95=percentile([s.seconds for s in items if not s.failed], 95),
        input_tokens=sum(s.input_tokens for s in items),
        output_tokens=sum(s.output_tokens for s in items),
        usd_per_1000=per_1000([s.cost_nusd for s in items]),
        reference_usd_per_1000=per_1000([reference_cost.get(s.id, 0) for s in items]),
        measures=dict(measures or {}),
    )


@dataclass(frozen=True)
class Recommendation:
    """The chain to configure, and what it is predicted to do."""

    chain: tuple[str, ...]
    gate: str
    quality: float
    ci: tuple[float, float]
    local_share: float
    usd_per_1000: Decimal
    saved_per_1000: Decimal
    clears: bool
    """False when no chain, the reference alone included, clears the bar."""

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` shape."""
        return {
            "chain": list(self.chain),
            "gate": self.gate,
            "quality": round(self.quality, 4),
            "ci95": [round(self.ci[0], 4), round(self.ci[1], 4)],
            "local_share": round(self.local_share, 4),
            "usd_per_1000": str(self.usd_per_1000),
            "saved_per_1000": str(self.saved_per_1000),
            "clears": self.clears,
        }


def recommend(
    candidates: Mapping[str, Sequence[Scored]],
    reference: str,
    reference_items: Sequence[Scored],
    min_quality: float,
) -> Recommendation:
    """The cheapest chain whose quality's lower 95% bound is at least ``min_quality``.

    ``candidates`` are the local models' items by ref; items line up with ``reference_items``
    by id. Ties in cost go to the higher lower bound.
    """
    by_id = {s.id: s for s in reference_items}
    ref_cost = per_1000([s.cost_nusd for s in reference_items])
    options = [_option((reference,), "checks", list(reference_items), 0.0, ref_cost)]
    for ref, items in candidates.items():
        paired = [s for s in items if s.id in by_id]
        options.append(_option((ref,), "checks", paired, 1.0, ref_cost))
        chained = [s if s.passed else by_id[s.id] for s in paired]
        share = mean([1.0 if s.passed else 0.0 for s in paired])
        options.append(_option((ref, reference), "checks", chained, share, ref_cost))
    clearing = [o for o in options if o.ci[0] >= min_quality]
    pool = clearing or options[:1]
    best = min(pool, key=lambda o: (o.usd_per_1000, -o.ci[0], len(o.chain)))
    return replace(best, clears=bool(clearing))


def _option(
    chain: tuple[str, ...], gate: str, items: Sequence[Scored], share: float, reference_per_1000: Decimal
) -> Recommendation:
    scores = [s.score for s in items]
    cost = per_1000([s.cost_nusd for s in items])
    return Recommendation(
        chain=chain,
        gate=gate,
        quality=mean(scores),
        ci=mean_ci(scores),
        local_share=share,
        usd_per_1000=cost,
        saved_per_1000=reference_per_1000 - cost,
        clears=True,
    )
