"""Turning a router ``CallEvent`` into one ledger row: prices, savings, text, time.

Pricing rules (exact: ``Decimal`` arithmetic, stored as whole nano-dollars):

* a failed call costs 0 and avoids 0;
* a local call costs 0 (it ran on your hardware) and avoids what the savings baseline would
  have charged for the same input + output tokens — 0 when no priced baseline is configured;
* a hosted call costs its input + output tokens at the model's configured ``cost`` (USD per
  million tokens) and avoids 0. A hosted model with no declared price (no model entry, or all
  prices 0) is recorded with cost 0 and ``priced = 0`` so reports can say the spend is a floor.

Prompt and answer text are kept only when ``offload.ledger.storeText`` is on. Error messages
are our own one-line summaries, cut short and with key-looking strings masked.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from offload.errors import InputError, OffloadError

if TYPE_CHECKING:
    from offload.config import Config, Cost
    from offload.routing.router import CallEvent
    from offload.types import ChatRequest

NANO_PER_USD = 10**9
ERROR_CHARS = 300
BASELINE_HINT = (
    "set a savings baseline to price local calls: add"
    ' offload: { savings: { baseline: "anthropic/claude-sonnet-4-5" } } to your config'
)
COLUMNS = (
    "ts",
    "day",
    "task",
    "provider",
    "model",
    "local",
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "seconds",
    "ttft_seconds",
    "outcome",
    "error",
    "escalated",
    "failover",
    "priced",
    "cost_nusd",
    "avoided_nusd",
    "baseline",
    "prompt",
    "answer",
    "client",
    "scenario",
)
INSERT = f"INSERT INTO calls ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
Row = tuple[Any, ...]

SECRETS = re.compile(
    r"(sk-[A-Za-z0-9_\-]{6,}|(?i:bearer)\s+[^\s,;]+|(?i:(?:api[_-]?key|token|secret|password)\s*[=:]\s*)[^\s,;&]+)"
)
RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True, slots=True)
class Baseline:
    """The hosted model local calls are priced against."""

    ref: str
    cost: Cost


def nano_usd(cost: Cost, input_tokens: int, output_tokens: int) -> int:
    """Exact nano-dollars for the tokens at per-million prices (half-even below 1e-9 USD)."""
    # USD per million tokens × tokens = micro-dollars; × 1000 = nano-dollars.
    micro = Decimal(repr(cost.input)) * input_tokens + Decimal(repr(cost.output)) * output_tokens
    return int((micro * 1000).to_integral_value(ROUND_HALF_EVEN))


def usd(nano: int | None) -> Decimal:
    """Nano-dollars as an exact ``Decimal`` of dollars."""
    return Decimal(nano or 0).scaleb(-9)


def resolve_baseline(config: Config | None) -> tuple[Baseline | None, str | None]:
    """The configured baseline, or ``None`` and why it cannot price savings."""
    if config is None or not config.settings.savings_baseline:
        return None, "no savings baseline configured"
    try:
        ref = config.resolve(config.settings.savings_baseline)
    except OffloadError as exc:
        return None, f"savings baseline {config.settings.savings_baseline!r}: {exc.message}"
    model = config.model_def(ref)
    if model is None or model.cost.free:
        return None, f"savings baseline {ref} has no price (declare its cost under models.providers)"
    return Baseline(str(ref), model.cost), None


def call_cost(event: CallEvent) -> tuple[int, bool]:
    """(cost in nano-dollars, whether the price is known) for one call."""
    if event.result is None or event.error is not None or event.candidate.local:
        return 0, True
    model = event.candidate.model or event.candidate.provider.model(event.model)
    if model is None or model.cost.free:
        return 0, False
    usage = event.result.usage
    return nano_usd(model.cost, usage.input_tokens, usage.output_tokens), True


def call_avoided(event: CallEvent, baseline: Baseline | None) -> int:
    """What the baseline would have charged for a call served locally (nano-dollars)."""
    if baseline is None or event.result is None or event.error is not None or not event.candidate.local:
        return 0
    usage = event.result.usage
    return nano_usd(baseline.cost, usage.input_tokens, usage.output_tokens)


def mask_secrets(text: str) -> str:
    """``text`` with key-looking substrings replaced by ``***``."""

    def sub(match: re.Match[str]) -> str:
        whole = match.group(0)
        for sep in ("=", ":"):
            if sep in whole and not whole.lower().startswith(("sk-", "bearer")):
                return whole.split(sep, 1)[0] + sep + "***"
        return "Bearer ***" if whole.lower().startswith("bearer") else "***"

    return SECRETS.sub(sub, text)


def error_text(event: CallEvent) -> str | None:
    """A short, secret-free line for a failed call."""
    if event.error is None:
        return None
    text = mask_secrets(event.error.short())
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def prompt_text(request: ChatRequest | None) -> str | None:
    """The request's messages as JSON (images as a count, never their data)."""
    if request is None:
        return None
    messages: list[dict[str, Any]] = []
    for m in request.messages:
        entry: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.images:
            entry["images"] = len(m.images)
        messages.append(entry)
    return json.dumps(messages, ensure_ascii=False)


def local_day(ts: float) -> str:
    """The local calendar day of an epoch time, ``YYYY-MM-DD``."""
    return time.strftime("%Y-%m-%d", time.localtime(ts))


def event_row(event: CallEvent, *, ts: float, baseline: Baseline | None, store_text: bool) -> Row:
    """The ``calls`` row for ``event`` (values in ``COLUMNS`` order)."""
    result = event.result if event.error is None else None
    usage = result.usage if result is not None else None
    cost, priced = call_cost(event)
    return (
        ts,
        local_day(ts),
        event.task,
        event.candidate.provider.id,
        event.model or event.candidate.ref.model,
        int(event.candidate.local),
        usage.input_tokens if usage else 0,
        usage.output_tokens if usage else 0,
        usage.reasoning_tokens if usage else 0,
        float(event.seconds),
        result.timings.time_to_first_token if result is not None else None,
        event.outcome,
        error_text(event),
        int(event.escalated),
        int(event.failover),
        int(priced),
        cost,
        call_avoided(event, baseline),
        baseline.ref if baseline else None,
        prompt_text(event.request) if store_text else None,
        result.content if store_text and result is not None else None,
        None,
        None,
    )


def parse_when(text: str, now: float | None = None) -> float:
    """Epoch seconds for ``7d``/``24h``/``30m``/``2w`` ago, or an ISO date/time (local unless zoned)."""
    raw = text.strip()
    match = RELATIVE.match(raw.lower())
    if match:
        base = time.time() if now is None else now
        return base - float(match.group(1)) * UNIT_SECONDS[match.group(2)]
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InputError(
            f"cannot read the time {text!r}",
            remedy="use a span like 7d, 24h, 30m or a date like 2026-11-01 (or 2026-11-01T09:00)",
        ) from None
    return moment.timestamp()
