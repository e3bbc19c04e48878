"""The Responses API half of ``OpenAIFake``: response objects and their streamed event sequence.

Shapes follow OpenAI's ``/v1/responses``: a ``response`` object with ``output`` items
(``reasoning`` then ``message`` with ``output_text`` parts) and ``usage``; streams emit
``response.created``, ``response.in_progress``, per-item ``output_item.added``/``done``,
``content_part.added``/``done``, ``output_text.delta``/``done`` (and ``reasoning_text.*`` when
reasoning is shown), then ``response.completed`` or ``response.incomplete``. Every event has a
rising ``sequence_number``; there is no ``[DONE]`` marker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from offload.testing._fake_replies import Reply, pieces
from offload.testing._hosted_fake import sse


@dataclass(frozen=True, slots=True)
class Draft:
    """Everything needed to render one response."""

    rid: str
    model: str
    created: int
    request: Mapping[str, Any]
    reply: Reply
    show_reasoning: bool
    reasoning_id: str
    message_id: str


def usage(reply: Reply) -> dict[str, Any]:
    """The ``usage`` block."""
    return {
        "input_tokens": reply.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": reply.output_tokens,
        "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
        "total_tokens": reply.input_tokens + reply.output_tokens,
    }


def reasoning_item(d: Draft, *, done: bool = True) -> dict[str, Any]:
    """The ``reasoning`` output item (its text only when the fake shows reasoning)."""
    item: dict[str, Any] = {"id": d.reasoning_id, "type": "reasoning", "summary": []}
    if d.show_reasoning:
        item["content"] = [{"type": "reasoning_text", "text": d.reply.reasoning if done else ""}]
    return item


def text_part(text: str) -> dict[str, Any]:
    """An ``output_text`` content part."""
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def message_item(d: Draft, *, done: bool = True) -> dict[str, Any]:
    """The assistant ``message`` output item."""
    status = ("completed" if d.reply.finish == "stop" else "incomplete") if done else "in_progress"
    content = [text_part(d.reply.text)] if done else []
    return {"id": d.message_id, "type": "message", "status": status, "role": "assistant", "content": content}


def status_of(d: Draft) -> str:
    """``completed``, or ``incomplete`` when the reply was cut at ``max_output_tokens``."""
    return "completed" if d.reply.finish == "stop" else "incomplete"


def response_object(d: Draft, *, status: str, output: list[dict[str, Any]], final: bool) -> dict[str, Any]:
    """The ``response`` object (the non-streamed reply, and the payload of lifecycle events)."""
    req = d.request
    fmt = (req.get("text") or {}).get("format") or {"type": "text"}
    return {
        "id": d.rid,
        "object": "response",
        "created_at": d.created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": req.get("instructions"),
        "max_output_tokens": req.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": d.model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": req.get("previous_response_id"),
        "reasoning": {"effort": (req.get("reasoning") or {}).get("effort"), "summary": None},
        "service_tier": "default",
        "store": req.get("store", True),
        "temperature": req.get("temperature", 1.0),
        "text": {"format": fmt, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": req.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage(d.reply) if final else None,
        "user": None,
        "metadata": {},
    }


def final_output(d: Draft) -> list[dict[str, Any]]:
    """The finished ``output`` items."""
    items = [reasoning_item(d)] if d.reply.reasoning else []
    return [*items, message_item(d)]


def response_json(d: Draft) -> dict[str, Any]:
    """The whole non-streamed reply."""
    return response_object(d, status=status_of(d), output=final_output(d), final=True)


class _Events:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.deltas_at: list[int] = []

    def add(self, kind: str, **fields: Any) -> None:
        self.chunks.append(sse({"type": kind, **fields, "sequence_number": len(self.chunks)}, kind))


def _reasoning_events(ev: _Events, d: Draft, index: int) -> None:
    ev.add("response.output_item.added", output_index=index, item=reasoning_item(d, done=False))
    if d.show_reasoning:
        where = {"item_id": d.reasoning_id, "output_index": index, "content_index": 0}
        for piece in pieces(d.reply.reasoning):
            ev.add("response.reasoning_text.delta", **where, delta=piece)
        ev.add("response.reasoning_text.done", **where, text=d.reply.reasoning)
    ev.add("response.output_item.done", output_index=index, item=reasoning_item(d))


def _message_events(ev: _Events, d: Draft, index: int) -> None:
    where = {"item_id": d.message_id, "output_index": index, "content_index": 0}
    ev.add("response.output_item.added", output_index=index, item=message_item(d, done=False))
    ev.add("response.content_part.added", **where, part=text_part(""))
    for piece in pieces(d.reply.text):
        ev.deltas_at.append(len(ev.chunks))
        ev.add("response.output_text.delta", **where, delta=piece, logprobs=[])
    ev.add("response.output_text.done", **where, text=d.reply.text, logprobs=[])
    ev.add("response.content_part.done", **where, part=text_part(d.reply.text))
    ev.add("response.output_item.done", output_index=index, item=message_item(d))


def stream_events(
    d: Draft, *, error: Mapping[str, Any] | None = None, keep: int = 2
) -> tuple[list[bytes], int]:
    """The event stream and the index just after the ``keep``-th text delta (where faults strike).

    With ``error``, the stream stops there with an ``error`` event (4xx) or ``response.failed``
    (5xx); ``error`` is an OpenAI error object plus its ``status``.
    """
    ev = _Events()
    ev.add("response.created", response=response_object(d, status="in_progress", output=[], final=False))
    ev.add("response.in_progress", response=response_object(d, status="in_progress", output=[], final=False))
    index = 0
    if d.reply.reasoning:
        _reasoning_events(ev, d, index)
        index += 1
    _message_events(ev, d, index)
    final = response_object(d, status=status_of(d), output=final_output(d), final=True)
    ev.add("response.completed" if final["status"] == "completed" else "response.incomplete", response=final)
    cut = ev.deltas_at[keep] if len(ev.deltas_at) > keep else len(ev.chunks) - 1
    if error is None:
        return ev.chunks, cut
    ev.chunks = ev.chunks[:cut]
    if int(error.get("status") or 500) >= 500:
        failed = response_object(d, status="failed", output=[], final=False)
        failed["error"] = {"code": "server_error", "message": str(error.get("message"))}
        ev.add("response.failed", response=failed)
    else:
        ev.add("error", code=error.get("code") or error.get("type"), message=error.get("message"), param=None)
    return ev.chunks, len(ev.chunks)
