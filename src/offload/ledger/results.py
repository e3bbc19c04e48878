"""What the ledger's reports return: ``Bucket`` (one group's totals and rates), ``Summary``
(totals plus breakdowns by day, task and model) and ``CallRow`` (one line of the call log).

The definitions behind the figures are in ``offload.ledger.report``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class Bucket:
    """Aggregates for a group of calls (the totals, one day, one task or one model)."""

    key: str | None
    calls: int = 0
    ok_calls: int = 0
    local_calls: int = 0
    local_input_tokens: int = 0
    local_output_tokens: int = 0
    hosted_input_tokens: int = 0
    hosted_output_tokens: int = 0
    spent_usd: Decimal = Decimal(0)
    avoided_usd: Decimal = Decimal(0)
    escalated: int = 0
    failovers: int = 0
    unpriced_calls: int = 0
    unbaselined_local_calls: int = 0
    median_latency: float | None = None
    local: bool | None = None

    @property
    def failed_calls(self) -> int:
        """Calls that ended in an error."""
        return self.calls - self.ok_calls

    @property
    def hosted_calls(self) -> int:
        """Answered calls served by a hosted model."""
        return self.ok_calls - self.local_calls

    @property
    def local_tokens(self) -> int:
        """Input + output tokens processed locally."""
        return self.local_input_tokens + self.local_output_tokens

    @property
    def hosted_tokens(self) -> int:
        """Input + output tokens sent to hosted models."""
        return self.hosted_input_tokens + self.hosted_output_tokens

    @property
    def local_share(self) -> float:
        """Share of answered calls served locally (0 when nothing was answered)."""
        return rate(self.local_calls, self.ok_calls)

    @property
    def escalation_rate(self) -> float:
        """Share of answered calls that were escalations."""
        return rate(self.escalated, self.ok_calls)

    @property
    def failover_rate(self) -> float:
        """Share of answered calls that needed a failover first."""
        return rate(self.failovers, self.ok_calls)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (dollars as numbers)."""
        return {
            "key": self.key,
            "local": self.local,
            "calls": self.calls,
            "ok_calls": self.ok_calls,
            "failed_calls": self.failed_calls,
            "local_calls": self.local_calls,
            "hosted_calls": self.hosted_calls,
            "local_share": self.local_share,
            "tokens": {
                "local_input": self.local_input_tokens,
                "local_output": self.local_output_tokens,
                "hosted_input": self.hosted_input_tokens,
                "hosted_output": self.hosted_output_tokens,
                "local": self.local_tokens,
                "hosted": self.hosted_tokens,
            },
            "spent_usd": float(self.spent_usd),
            "avoided_usd": float(self.avoided_usd),
            "escalated": self.escalated,
            "escalation_rate": self.escalation_rate,
            "failovers": self.failovers,
            "failover_rate": self.failover_rate,
            "unpriced_calls": self.unpriced_calls,
            "unbaselined_local_calls": self.unbaselined_local_calls,
            "median_latency_seconds": self.median_latency,
        }


@dataclass(frozen=True, slots=True)
class Summary:
    """What ``offload stats`` shows: totals plus breakdowns by day, task and model."""

    totals: Bucket
    by_day: tuple[Bucket, ...] = ()
    by_task: tuple[Bucket, ...] = ()
    by_model: tuple[Bucket, ...] = ()
    by_client: tuple[Bucket, ...] = ()
    """Gateway requests (``offload serve``) by the client that sent them."""
    since: float | None = None
    until: float | None = None
    baselines: tuple[str, ...] = ()
    first_ts: float | None = None
    last_ts: float | None = None
    path: str | None = None

    @property
    def empty(self) -> bool:
        """True when no call falls in the window."""
        return self.totals.calls == 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the shape ``offload stats --json`` prints)."""
        return {
            "ledger": self.path,
            "since": self.since,
            "until": self.until,
            "first_call": self.first_ts,
            "last_call": self.last_ts,
            "baselines": list(self.baselines),
            "totals": self.totals.to_dict(),
            "by_day": [b.to_dict() for b in self.by_day],
            "by_task": [b.to_dict() for b in self.by_task],
            "by_model": [b.to_dict() for b in self.by_model],
            "by_client": [b.to_dict() for b in self.by_client],
        }


@dataclass(frozen=True, slots=True)
class CallRow:
    """One logged call."""

    id: int
    ts: float
    day: str
    task: str | None
    provider: str
    model: str
    local: bool
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    seconds: float
    ttft_seconds: float | None
    outcome: str
    error: str | None
    escalated: bool
    failover: bool
    priced: bool
    cost_usd: Decimal
    avoided_usd: Decimal
    baseline: str | None
    prompt: str | None = field(default=None, repr=False)
    answer: str | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """``provider/model``."""
        return f"{self.provider}/{self.model}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the shape ``offload log --json`` prints)."""
        return {
            "id": self.id,
            "time": self.ts,
            "day": self.day,
            "task": self.task,
            "provider": self.provider,
            "model": self.model,
            "local": self.local,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "seconds": self.seconds,
            "ttft_seconds": self.ttft_seconds,
            "outcome": self.outcome,
            "error": self.error,
            "escalated": self.escalated,
            "failover": self.failover,
            "priced": self.priced,
            "cost_usd": float(self.cost_usd),
            "avoided_usd": float(self.avoided_usd),
            "baseline": self.baseline,
            "prompt": self.prompt,
            "answer": self.answer,
        }


def rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0
