"""``offload stats --what-if CHAIN``: the traffic already in the ledger, priced as if routed otherwise.

Every answered call keeps its tokens; only who serves it changes. With a local primary and a
hosted fallback, a share of calls stays local (by default the share the ledger shows was served
locally for these calls, or all of them when none were: say ``local_share`` from ``offload
calibrate`` for a measured one) and the rest is priced at the first hosted model of the chain.
A chain with a hosted primary prices every call at it; an all-local chain costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from offload.ledger.rows import nano_usd, usd

if TYPE_CHECKING:
    from offload.config import Config


@dataclass(frozen=True)
class WhatIf:
    """Actual and what-if spend over the same answered calls."""

    chain: tuple[str, ...]
    task: str | None
    calls: int
    input_tokens: int
    output_tokens: int
    actual_nusd: int
    what_if_nusd: int
    local_share: float
    priced_at: str | None
    notes: tuple[str, ...] = ()

    @property
    def difference(self) -> Decimal:
        """What-if minus actual, in dollars (negative: the chain would have saved money)."""
        return usd(self.what_if_nusd) - usd(self.actual_nusd)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` shape."""
        return {
            "chain": list(self.chain),
            "task": self.task,
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "actual_usd": str(usd(self.actual_nusd)),
            "what_if_usd": str(usd(self.what_if_nusd)),
            "difference_usd": str(self.difference),
            "local_share": round(self.local_share, 4),
            "priced_at": self.priced_at,
            "notes": list(self.notes),
        }


def what_if(
    config: Config,
    chain: Sequence[str],
    rows: Sequence[tuple[bool, int, int, int]],
    *,
    task: str | None = None,
    local_share: float | None = None,
) -> WhatIf:
    """Re-price ``rows`` (``LedgerReader.answered``) as if ``chain`` had served them."""
    refs = [config.resolve(ref) for ref in chain]
    hosted = next((r for r in refs if not config.is_local(r)), None)
    notes: list[str] = []
    if hosted is None:
        share = 1.0
    elif not config.is_local(refs[0]):
        share = 0.0
    elif local_share is not None:
        share = local_share
    else:
        local_calls = sum(1 for r in rows if r[0])
        share = local_calls / len(rows) if local_calls else 1.0
        notes.append(
            "local share taken from the ledger"
            if local_calls
            else "no local calls in the ledger: assumes all stay local (measure it: offload calibrate)"
        )
    model = config.model_def(hosted) if hosted is not None else None
    if hosted is not None and (model is None or model.cost.free):
        notes.append(f"{hosted} has no price in the config: its calls are priced at $0")
    tokens_in = sum(r[1] for r in rows)
    tokens_out = sum(r[2] for r in rows)
    full = nano_usd(model.cost, tokens_in, tokens_out) if model is not None else 0
    return WhatIf(
        chain=tuple(str(r) for r in refs),
        task=task,
        calls=len(rows),
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        actual_nusd=sum(r[3] for r in rows),
        what_if_nusd=round(full * (1 - share)),
        local_share=share,
        priced_at=str(hosted) if hosted is not None else None,
        notes=tuple(notes),
    )
