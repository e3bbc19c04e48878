"""What one finished item looks like: its output line, its result object, and failure kinds.

Owns ``ItemResult`` (what ``offload.batching`` yields) and the output line shapes (``result_row``,
``error_row``). Which failures are the item's own (written with their error) and which are the
servers' or account's (never written; the item runs again) is ``offload.routing.policy.environmental``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from offload.batching.inputs import Item, ItemId
from offload.errors import OffloadError

if TYPE_CHECKING:
    from offload.tasks.runner import TaskResult


@dataclass(frozen=True)
class ItemResult:
    """One finished item: its output line, and the task result or error behind it."""

    id: ItemId
    row: dict[str, Any]
    result: TaskResult | None = None
    error: OffloadError | None = None

    @property
    def ok(self) -> bool:
        """True when the item has an output."""
        return self.row.get("error") is None

    @property
    def output(self) -> Any:
        """The task's output (``None`` on failure)."""
        return self.row.get("output")

    @property
    def cached(self) -> bool:
        """True when the result came from the cache."""
        return bool(self.row.get("cached"))


def result_row(item: Item, result: TaskResult, seconds: float, server: str | None) -> dict[str, Any]:
    """The output line of a successful item."""
    row: dict[str, Any] = {
        "id": item.id,
        "output": result.output,
        "model": result.model,
        "local": result.local,
        "escalated": result.escalated,
        "escalations": list(result.escalations),
        "problems": list(result.problems),
        "tokens": {"input": result.usage.input_tokens, "output": result.usage.output_tokens},
        "parts": result.parts,
        "server": server,
        "cached": False,
        "seconds": round(seconds, 3),
        "error": None,
    }
    if result.judge_score is not None:
        row["judge_score"] = result.judge_score
    return row


def error_row(item: Item, kind: str, message: str, remedy: str | None, seconds: float) -> dict[str, Any]:
    """The output line of a failed item."""
    return {
        "id": item.id,
        "output": None,
        "model": None,
        "tokens": {"input": 0, "output": 0},
        "seconds": round(seconds, 3),
        "error": {"kind": kind, "message": message, "remedy": remedy},
    }
