"""What a tool call returns: the output plus who served it, whether it escalated, tokens and dollars.

``Calls`` is a router observer that keeps the model calls of the current tool call (a context
variable separates concurrent calls), so the result can say what the ledger says: what the
hosted calls cost and what the local ones avoided, priced by the same rules
(``offload.ledger.rows``). ``task_payload``/``ask_payload`` build the structured result;
``render`` its text form. Nothing here knows about MCP types.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from offload.ledger.rows import call_avoided, call_cost, resolve_baseline

if TYPE_CHECKING:
    from offload.config import Config
    from offload.routing.plan import CallEvent, Routed
    from offload.tasks.runner import TaskResult

OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "task": {"type": "string"},
        "output": {"description": "The task's output: text, or JSON for structured tasks."},
        "text": {"type": "string", "description": "The output as text."},
        "served_by": {"type": "string", "description": "provider/model that gave the accepted answer."},
        "local": {"type": "boolean", "description": "True when that model runs locally."},
        "escalated": {"type": "boolean"},
        "escalation_reasons": {"type": "array", "items": {"type": "string"}},
        "problems": {"type": "array", "items": {"type": "string"}},
        "tokens": {
            "type": "object",
            "properties": {"input": {"type": "integer"}, "output": {"type": "integer"}},
            "required": ["input", "output"],
        },
        "usd_avoided": {"type": "number", "description": "What the savings baseline would have charged."},
        "usd_spent": {"type": "number", "description": "What hosted calls cost."},
        "model_calls": {"type": "integer"},
        "sources": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Files read, root-relative.",
        },
    },
    "required": ["task", "output", "text", "served_by", "local", "escalated", "tokens", "usd_avoided"],
}

_current: ContextVar[list[CallEvent] | None] = ContextVar("offload_mcp_calls", default=None)


class Calls:
    """Router observer keeping each tool call's model calls (see the module docstring)."""

    def __call__(self, event: CallEvent) -> None:
        calls = _current.get()
        if calls is not None:
            calls.append(event)

    @staticmethod
    @contextmanager
    def collecting() -> Iterator[list[CallEvent]]:
        """The model calls made inside the block (by this task and the tasks it starts)."""
        calls: list[CallEvent] = []
        token = _current.set(calls)
        try:
            yield calls
        finally:
            _current.reset(token)


def dollars(events: Sequence[CallEvent], config: Config) -> tuple[float, float]:
    """(spent, avoided) in USD for the calls, as the ledger prices them."""
    baseline, _ = resolve_baseline(config)
    spent = sum(call_cost(e)[0] for e in events)
    avoided = sum(call_avoided(e, baseline) for e in events)
    return _usd(spent), _usd(avoided)


def _usd(nano: int) -> float:
    return float(Decimal(nano).scaleb(-9))


def task_payload(
    result: TaskResult, events: Sequence[CallEvent], config: Config, sources: Sequence[str]
) -> dict[str, Any]:
    """The structured result of a task tool."""
    spent, avoided = dollars(events, config)
    return {
        "task": result.task,
        "output": result.output,
        "text": result.text,
        "served_by": result.model,
        "local": result.local,
        "escalated": result.escalated,
        "escalation_reasons": list(result.escalations),
        "problems": list(result.problems),
        "tokens": {"input": result.usage.input_tokens, "output": result.usage.output_tokens},
        "usd_avoided": avoided,
        "usd_spent": spent,
        "model_calls": len(events),
        "sources": list(sources),
    }


def ask_payload(
    routed: Routed, text: str, events: Sequence[CallEvent], config: Config, sources: Sequence[str]
) -> dict[str, Any]:
    """The structured result of the ``ask`` tool."""
    spent, avoided = dollars(events, config)
    usage = routed.result.usage
    return {
        "task": "ask",
        "output": text,
        "text": text,
        "served_by": f"{routed.candidate.ref.provider}/{routed.result.model or routed.candidate.ref.model}",
        "local": routed.candidate.local,
        "escalated": False,
        "escalation_reasons": [],
        "problems": [],
        "tokens": {"input": usage.input_tokens, "output": usage.output_tokens},
        "usd_avoided": avoided,
        "usd_spent": spent,
        "model_calls": len(events),
        "sources": list(sources),
        "response_id": routed.result.response_id,
    }


def render(payload: dict[str, Any]) -> str:
    """The text form: the output, then one line saying who served it and what it saved."""
    where = "local" if payload["local"] else "hosted"
    tokens = payload["tokens"]
    line = (
        f"[offload: {payload['served_by']} ({where}); {tokens['input']} in / {tokens['output']} out tokens; "
        f"${payload['usd_avoided']:.6f} avoided"
    )
    if payload["usd_spent"]:
        line += f", ${payload['usd_spent']:.6f} spent"
    if payload["escalated"]:
        line += "; escalated: " + " | ".join(payload["escalation_reasons"])
    if payload["problems"]:
        line += "; problems: " + "; ".join(payload["problems"])
    return f"{payload['text']}\n\n{line}]"
