"""One ledger row and one metrics update per gateway request, priced at the model the client asked for.

A request served locally costs nothing and avoids what the client's model would have cost for
the same tokens (the configured savings baseline when that model has no known price). A
relayed or translated hosted request costs the served model's price. Rows carry task
``gateway/<scenario>``, the client (read from its User-Agent) and the scenario; they go onto
the ledger's queue in small batches, so the request never waits on the disk.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from offload.config_schema import Cost
from offload.gateway.metrics import Metrics
from offload.gateway.scenarios import Protocol, Routes, Step
from offload.ledger.rows import Row, local_day, nano_usd
from offload.redact import text as mask_secrets

if TYPE_CHECKING:
    from offload.ledger import Ledger

BATCH_ROWS = 256
BATCH_SECONDS = 0.05
"""Rows are handed to the ledger's writer thread in batches: waking it per request costs throughput."""
CLIENTS = (
    ("claude-cli", "claude-code"),
    ("claude-code", "claude-code"),
    ("codex", "codex"),
    ("openclaw", "openclaw"),
    ("anthropic/", "anthropic-sdk"),
    ("openai/", "openai-sdk"),
)


_CLIENT_CACHE: dict[tuple[str, str], str] = {}


def client_of(user_agent: str, originator: str = "") -> str:
    """A short name for the client that sent a request (cached per header pair)."""
    key = (user_agent, originator)
    found = _CLIENT_CACHE.get(key)
    if found is not None:
        return found
    text = f"{originator} {user_agent}".lower()
    found = next((name for needle, name in CLIENTS if needle in text), "other")
    if len(_CLIENT_CACHE) > 1024:
        _CLIENT_CACHE.clear()
    _CLIENT_CACHE[key] = found
    return found


@dataclass(slots=True)
class Outcome:
    """What happened to one request, filled in as it is served."""

    protocol: Protocol
    scenario: str
    client: str
    requested: str
    started: float
    step: Step | None = None
    served: str = ""
    """The model id that answered, when the step chose it (``auto``)."""
    input_tokens: int = 0
    output_tokens: int = 0
    ttft: float | None = None
    error: str | None = None
    kind: str = "ok"
    fallback: bool = False
    recorded: bool = False


class Accounting:
    """Prices outcomes, queues their ledger rows and updates the metrics."""

    def __init__(self, routes: Routes, ledger: Ledger | None, metrics: Metrics) -> None:
        self.routes = routes
        self.ledger = ledger
        self.metrics = metrics
        self._prices: dict[tuple[Protocol, str], tuple[Cost | None, str | None]] = {}
        self._pending: list[Row] = []
        self._day: tuple[int, str] = (-1, "")
        self._timer: asyncio.TimerHandle | None = None

    def price_of(self, protocol: Protocol, model: str) -> tuple[Cost | None, str | None]:
        """The price of the client's model and its ``provider/model`` name (cached)."""
        key = (protocol, model)
        found = self._prices.get(key)
        if found is None:
            owner = self.routes.owner(protocol, model)
            declared = owner[0].model(owner[1]) if owner else None
            if owner is not None and declared is not None and not declared.cost.free:
                found = (declared.cost, f"{owner[0].id}/{owner[1]}")
            elif self.ledger is not None and self.ledger.baseline is not None:
                found = (self.ledger.baseline.cost, self.ledger.baseline.ref)
            else:
                found = (None, None)
            if len(self._prices) > 4096:
                self._prices.clear()
            self._prices[key] = found
        return found

    def done(self, out: Outcome, now: float, wall: float) -> None:
        """Record a finished request once (``now`` monotonic, ``wall`` epoch seconds)."""
        if out.recorded:
            return
        out.recorded = True
        seconds = now - out.started
        step = out.step
        local = bool(step is not None and step.local)
        ok = out.error is None and step is not None
        cost = avoided = 0
        priced = True
        baseline = None
        if ok and step is not None and local:
            price, baseline = self.price_of(out.protocol, out.requested)
            if price is not None:
                avoided = nano_usd(price, out.input_tokens, out.output_tokens)
        elif ok and step is not None:
            served = step.model_def
            if served is not None and not served.cost.free:
                cost = nano_usd(served.cost, out.input_tokens, out.output_tokens)
            else:
                priced = False
        self.metrics.observe(out, seconds, local, avoided)
        if self.ledger is None:
            return
        minute = int(wall // 60)
        if minute != self._day[0]:
            self._day = (minute, local_day(wall))
        row = (
            wall,
            self._day[1],
            f"gateway/{out.scenario}",
            step.provider.id if step is not None else "gateway",
            out.served or (step.model if step is not None else out.requested or "unknown"),
            int(local),
            out.input_tokens,
            out.output_tokens,
            0,
            seconds,
            out.ttft,
            "ok" if ok else out.kind,
            mask_secrets(out.error)[:300] if out.error else None,
            0,
            int(out.fallback),
            int(priced),
            cost,
            avoided,
            baseline,
            None,
            None,
            out.client,
            out.scenario,
        )
        self._pending.append(row)
        if len(self._pending) >= BATCH_ROWS:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(BATCH_SECONDS, self.flush)

    def flush(self) -> None:
        """Hand the rows gathered so far to the ledger's writer (called in batches, and at close)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        rows, self._pending = self._pending, []
        if self.ledger is not None:
            for row in rows:
                self.ledger.record_row(row)
