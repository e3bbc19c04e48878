"""``POST /v1/responses`` of the LM Studio fake (OpenAI Responses API as LM Studio 0.4.25 answers it).

Owns the recorded response object, the shared thread store use (``previous_response_id`` works
with ids from ``/api/v1/chat`` and vice versa; ``id`` is returned even when ``store`` is false),
``reasoning.effort``, ``text.format`` json_schema, and the SSE stream (``response.created`` …
``response.output_text.delta`` … ``response.completed``).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import JSONResponse, Response

from offload.testing import _lmstudio_errors as errors
from offload.testing._lmstudio_engine import Engine, collect, prestart
from offload.testing._lmstudio_errors import TurnError
from offload.testing._lmstudio_events import Delta, Event, Finished, Started, TurnPlan, TurnResult
from offload.testing._lmstudio_http import Call, Handler, JsonKind, check_types, drive, event_stream, sse
from offload.testing._lmstudio_openai import content_parts, lm_id, openai_type_error, split_conversation
from offload.testing._lmstudio_state import new_response_id

TYPES: dict[str, tuple[JsonKind, ...]] = {
    "model": ("string",),
    "input": ("string", "array"),
    "instructions": ("string",),
    "previous_response_id": ("string",),
    "store": ("boolean",),
    "stream": ("boolean",),
    "max_output_tokens": ("integer",),
    "temperature": ("number",),
    "top_p": ("number",),
    "reasoning": ("object",),
    "text": ("object",),
}


def routes(engine: Engine) -> list[tuple[str, str, Handler]]:
    async def responses(call: Call) -> Response:
        return await _responses(engine, call)

    return [("POST", "/v1/responses", responses)]


def _messages(value: Any) -> list[tuple[str, str, list[str]]]:
    if isinstance(value, str):
        return [("user", value, [])]
    if not isinstance(value, list) or not value:
        raise errors.openai_invalid("'input' must be a string or a non-empty array", "input")
    messages = []
    for item in value:
        if isinstance(item, dict) and isinstance(item.get("role"), str):
            text, images = content_parts(item.get("content"))
            messages.append((item["role"], text, images))
        elif isinstance(item, dict) and item.get("type") == "input_text":
            messages.append(("user", str(item.get("text", "")), []))
    return messages


def _plan(engine: Engine, call: Call, response_id: str) -> TurnPlan:
    body = call.body
    check_types(body, TYPES, openai_type_error)
    system, history, user_text, images = split_conversation(_messages(body.get("input")))
    target = engine.resolve_compat(str(body.get("model") or ""))
    previous = body.get("previous_response_id")
    if previous is not None:
        thread = engine.thread(previous)
        if thread is None:
            raise errors.responses_unknown_previous(previous)
        system, history = system or thread[0], thread[1] + history
    effort = (body.get("reasoning") or {}).get("effort")
    model = target.model
    text_format = (body.get("text") or {}).get("format") or {}
    return TurnPlan(
        target=target,
        route=call.path,
        user_text=user_text,
        system_prompt=body.get("instructions") or system,
        history=history,
        images=tuple(images),
        parent_id=previous,
        store=body.get("store") is not False,
        max_output_tokens=body.get("max_output_tokens"),
        json_schema=text_format.get("schema", {}) if text_format.get("type") == "json_schema" else None,
        reasoning=effort if effort in model.reasoning_options else model.default_reasoning,
        fault=call.fault,
        request=body,
        response_id=response_id,
    )


async def _responses(engine: Engine, call: Call) -> Response:
    response_id = new_response_id()
    plan = _plan(engine, call, response_id)
    shape = ResponseShape(call.body, response_id, int(time.time()))
    events = engine.run(plan)
    try:
        if call.stream:
            head, events = await prestart(events)
            return event_stream(drive(call, events, ResponsesStream(shape), head))
        result = await collect(events)
    except TurnError as err:
        raise errors.responses_turn_error(err) from err
    return JSONResponse(shape.complete(result))


def reasoning_item(item_id: str, text: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "reasoning",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
    }


def message_item(item_id: str, text: str | None, status: str = "completed") -> dict[str, Any]:
    content = [] if text is None else [_text_part(text)]
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": content}


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


class ResponseShape:
    """Builds the recorded response object for one request."""

    def __init__(self, body: dict[str, Any], response_id: str, created: int) -> None:
        self.body = body
        self.id = response_id
        self.created = created
        self.model = str(body.get("model") or "")
        self.message_id = lm_id("msg_")
        self.reasoning_id = lm_id("rs_")

    def obj(self, status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None) -> dict[str, Any]:
        body = self.body
        text_format = (body.get("text") or {}).get("format") or {"type": "text"}
        incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "completed_at": int(time.time()) if status in ("completed", "incomplete") else None,
            "status": status,
            "incomplete_details": incomplete,
            "model": self.model,
            "previous_response_id": body.get("previous_response_id"),
            "instructions": body.get("instructions"),
            "output": output,
            "error": None,
            "tools": body.get("tools") or [],
            "tool_choice": "auto",
            "truncation": "auto",
            "parallel_tool_calls": True,
            "text": {"format": text_format},
            "top_p": body.get("top_p", False),
            "presence_penalty": 0,
            "frequency_penalty": 1.1,
            "top_logprobs": 0,
            "temperature": body.get("temperature", 0.8),
            "reasoning": {"summary": None, "effort": (body.get("reasoning") or {}).get("effort")},
            "usage": usage,
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": None,
            "store": body.get("store") is not False,
            "background": False,
            "service_tier": "default",
            "metadata": body.get("metadata") or {},
            "safety_identifier": None,
            "prompt_cache_key": None,
        }

    def complete(self, result: TurnResult) -> dict[str, Any]:
        self.model = result.instance_id
        output = [reasoning_item(self.reasoning_id, result.reasoning)] if result.reasoning else []
        output.append(message_item(self.message_id, result.text))
        usage = {
            "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens,
            "total_tokens": result.input_tokens + result.output_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": result.reasoning_tokens},
        }
        return self.obj("incomplete" if result.finish_reason == "length" else "completed", output, usage)


class ResponsesStream:
    """Renders engine events as Responses API SSE events with sequence numbers."""

    def __init__(self, shape: ResponseShape) -> None:
        self.shape = shape
        self.seq = 0
        self.channel: str | None = None
        self.parts: dict[str, list[str]] = {"reasoning": [], "message": []}

    def _event(self, kind: str, **fields: Any) -> bytes:
        self.seq += 1
        return sse(kind, {"type": kind, "sequence_number": self.seq - 1, **fields})

    def render(self, event: Event) -> list[bytes]:
        if isinstance(event, Started):
            self.shape.model = event.instance_id
            response = self.shape.obj("in_progress", [], None)
            return [
                self._event("response.created", response=response),
                self._event("response.in_progress", response=response),
            ]
        if isinstance(event, Delta):
            chunks = self._switch(event.channel)
            self.parts[event.channel].append(event.text)
            index = 1 if event.channel == "message" and self.parts["reasoning"] else 0
            kind = (
                "response.output_text.delta"
                if event.channel == "message"
                else "response.reasoning_text.delta"
            )
            item_id = self.shape.message_id if event.channel == "message" else self.shape.reasoning_id
            return [
                *chunks,
                self._event(kind, item_id=item_id, output_index=index, content_index=0, delta=event.text),
            ]
        if isinstance(event, Finished):
            return [
                *self._switch(None),
                self._event("response.completed", response=self.shape.complete(event.result)),
            ]
        return []

    def _switch(self, channel: str | None) -> list[bytes]:
        if channel == self.channel:
            return []
        chunks = self._close() if self.channel else []
        self.channel = channel
        if channel == "reasoning":
            item = reasoning_item(self.shape.reasoning_id, "")
            chunks.append(self._event("response.output_item.added", output_index=0, item=item))
        elif channel == "message":
            index = 1 if self.parts["reasoning"] else 0
            item = message_item(self.shape.message_id, None, "in_progress")
            chunks.append(self._event("response.output_item.added", output_index=index, item=item))
            part = _text_part("")
            ids = {"item_id": self.shape.message_id, "output_index": index, "content_index": 0}
            chunks.append(self._event("response.content_part.added", **ids, part=part))
        return chunks

    def _close(self) -> list[bytes]:
        if self.channel == "reasoning":
            text = "".join(self.parts["reasoning"])
            ids = {"item_id": self.shape.reasoning_id, "output_index": 0, "content_index": 0}
            item = reasoning_item(self.shape.reasoning_id, text)
            return [
                self._event("response.reasoning_text.done", **ids, text=text),
                self._event("response.output_item.done", output_index=0, item=item),
            ]
        text = "".join(self.parts["message"])
        index = 1 if self.parts["reasoning"] else 0
        ids = {"item_id": self.shape.message_id, "output_index": index, "content_index": 0}
        return [
            self._event("response.output_text.done", **ids, text=text),
            self._event("response.content_part.done", **ids, part=_text_part(text)),
            self._event(
                "response.output_item.done",
                output_index=index,
                item=message_item(self.shape.message_id, text),
            ),
        ]

    def error(self, err: TurnError) -> list[bytes]:
        failed = self.shape.obj("failed", [], None)
        failed["error"] = {"code": "server_error", "message": err.message}
        return [
            self._event("error", code="server_error", message=err.message, param=None),
            self._event("response.failed", response=failed),
        ]
