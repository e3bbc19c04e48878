"""OpenAI Responses API (``POST /responses``): bodies out, results and stream events in.

Pure functions, no I/O. The system prompt travels as ``instructions``, the other turns as
``input`` items; threads continue with ``previous_response_id`` and the reply's ``id`` becomes
``ChatResult.response_id``. Output items of type ``reasoning`` make the reasoning (their
``reasoning_text`` content, or the ``summary`` when that is all the server shows), items of
type ``message`` the answer. Errors map through ``openai_chat.classify_error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from offload.errors import BadResponse, InvalidRequest, ProviderError
from offload.protocols.errors import ErrorContext
from offload.protocols.openai_chat import (
    classify_error,
    reasoning_effort,
    require,
    schema_name,
    stream_status,
)
from offload.types import ChatRequest, ChatResult, Message, ReasoningDelta, StreamEvent, TextDelta, Usage

RESPONSES = "/responses"
INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


# --- request -------------------------------------------------------------------------------


def input_item(message: Message) -> dict[str, Any]:
    """One ``input`` item: string content, or ``input_text`` + ``input_image`` parts for images."""
    if not message.images:
        return {"role": message.role, "content": message.content}
    parts: list[dict[str, Any]] = [{"type": "input_text", "text": message.content}] if message.content else []
    parts += [{"type": "input_image", "image_url": url, "detail": "auto"} for url in message.images]
    return {"role": message.role, "content": parts}


def build_body(request: ChatRequest, *, model: str, stream: bool) -> dict[str, Any]:
    """The ``/responses`` body for ``request``; optional keys only when set, ``store`` always."""
    turns = request.turns
    if not turns:
        raise InvalidRequest("the request has no user message")
    body: dict[str, Any] = {"model": model, "input": [input_item(m) for m in turns], "store": request.store}
    optional = {
        "instructions": request.system,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_output_tokens": request.max_output_tokens,
        "previous_response_id": request.previous_response_id,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    effort = reasoning_effort(request.reasoning)
    if effort:
        body["reasoning"] = {"effort": effort}
    if request.response_format is not None:
        schema = request.response_format
        body["text"] = {
            "format": {
                "type": "json_schema",
                "name": schema_name(schema),
                "schema": dict(schema.schema),
                "strict": schema.strict,
            }
        }
    if stream:
        body["stream"] = True
    return body


# --- response ------------------------------------------------------------------------------


def _parts_text(parts: Any, *kinds: str) -> str:
    if not isinstance(parts, list):
        return ""
    return "".join(
        str(p.get("text") or p.get("refusal") or "")
        for p in parts
        if isinstance(p, Mapping) and p.get("type") in kinds
    )


def output_texts(output: Any) -> tuple[str, str]:
    """``(content, reasoning)`` read from the ``output`` items."""
    content: list[str] = []
    reasoning: list[str] = []
    for item in output if isinstance(output, list) else []:
        if not isinstance(item, Mapping):
            continue
        if item.get("type") == "message":
            content.append(_parts_text(item.get("content"), "output_text", "refusal"))
        elif item.get("type") == "reasoning":
            text = _parts_text(item.get("content"), "reasoning_text")
            reasoning.append(text or _parts_text(item.get("summary"), "summary_text"))
    return "".join(content), "".join(reasoning)


def parse_usage(raw: Any) -> Usage:
    """Read ``usage`` (``output_tokens`` already includes reasoning tokens)."""
    if not isinstance(raw, Mapping):
        return Usage()
    details = raw.get("output_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, Mapping) else 0
    return Usage(
        input_tokens=int(raw.get("input_tokens") or 0),
        output_tokens=int(raw.get("output_tokens") or 0),
        reasoning_tokens=int(reasoning or 0),
    )


def finish_reason(body: Mapping[str, Any]) -> str | None:
    """``stop`` for a completed response, ``length`` when cut at ``max_output_tokens``."""
    status = body.get("status")
    if status == "completed":
        return "stop"
    if status == "incomplete":
        details = body.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, Mapping) else None
        return INCOMPLETE_REASONS.get(str(reason), str(reason or "incomplete"))
    return str(status) if status else None


def parse_response(data: Any, *, provider: str, model: str = "") -> ChatResult:
    """Read a ``/responses`` reply (also the ``response`` of ``response.completed``)."""
    body = require(data, "output", "response")
    content, reasoning = output_texts(body["output"])
    return ChatResult(
        content=content,
        reasoning=reasoning,
        model=str(body.get("model") or model),
        provider=provider,
        response_id=str(body["id"]) if body.get("id") else None,
        finish_reason=finish_reason(body),
        usage=parse_usage(body.get("usage")),
    )


# --- streaming -----------------------------------------------------------------------------


def event_error(payload: Mapping[str, Any], ctx: ErrorContext) -> ProviderError:
    """The error of an ``error`` event (flat) or a ``response.failed`` event (``response.error``)."""
    source: Any = payload
    if payload.get("type") == "response.failed":
        response = payload.get("response")
        source = response.get("error") if isinstance(response, Mapping) else None
    elif isinstance(payload.get("error"), Mapping):
        source = payload["error"]
    error = dict(source) if isinstance(source, Mapping) else {"message": "the response failed"}
    error.setdefault("message", "the response failed")
    return classify_error(stream_status(error), {"error": error}, ctx)


class ResponsesStream:
    """Accumulates Responses stream events into the final ``ChatResult``; raises on failures."""

    def __init__(self, ctx: ErrorContext, *, model: str = "") -> None:
        self._ctx = ctx
        self._model = model
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._reasoning_items: set[str] = set()
        self._final: ChatResult | None = None

    def feed(self, event: str, data: Any) -> list[StreamEvent]:
        """Take one SSE event and return its deltas (dispatches on ``data["type"]``)."""
        payload = data if isinstance(data, Mapping) else {}
        kind = str(payload.get("type") or event)
        if kind in ("error", "response.failed"):
            raise event_error(payload, self._ctx)
        if kind in ("response.output_text.delta", "response.refusal.delta"):
            return self._add(TextDelta(str(payload.get("delta") or "")))
        if kind in ("response.reasoning_text.delta", "response.reasoning_summary_text.delta"):
            self._reasoning_items.add(str(payload.get("item_id")))
            return self._add(ReasoningDelta(str(payload.get("delta") or "")))
        if (
            kind == "response.reasoning_text.done"
            and str(payload.get("item_id")) not in self._reasoning_items
        ):
            return self._add(ReasoningDelta(str(payload.get("text") or "")))  # sent whole, without deltas
        if kind in ("response.completed", "response.incomplete"):
            self._final = parse_response(
                payload.get("response"), provider=self._ctx.provider, model=self._model
            )
        return []

    def _add(self, event: TextDelta | ReasoningDelta) -> list[StreamEvent]:
        if not event.text:
            return []
        (self._text if isinstance(event, TextDelta) else self._reasoning).append(event.text)
        return [event]

    def result(self) -> ChatResult:
        """The complete answer; streamed text fills in what a terse final event leaves out."""
        if self._final is None:
            raise BadResponse(
                f"{self._ctx.provider} at {self._ctx.address} ended the stream before the response completed",
                provider=self._ctx.provider,
                model=self._ctx.model,
                address=self._ctx.address,
            )
        final = self._final
        return replace(
            final,
            content=final.content or "".join(self._text),
            reasoning=final.reasoning or "".join(self._reasoning),
        )
