"""OpenAI-compatible routes of the LM Studio fake: ``/v1/models``, ``/v1/chat/completions``, embeddings.

Owns the chat-completion bodies and chunks (recorded 0.4.25 shapes: ``reasoning_content``,
``tool_calls: []``, ``stats: {}``, ``system_fingerprint``), ``response_format`` json_schema,
``stop``, ``stream_options.include_usage``, tool calls when ``tool_choice`` forces one (arguments
filled from the tool's schema; streamed as pieces with ``index``, ``id`` on the first), deterministic
embeddings, and the helpers the other compat families share (message content parsing,
conversation splitting, LM Studio-style ids).
"""

from __future__ import annotations

import json
import math
import random
import secrets
import string
import time
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import JSONResponse, Response

from offload.testing import _lmstudio_errors as errors
from offload.testing._lmstudio_engine import Engine, collect, prestart
from offload.testing._lmstudio_errors import TurnError
from offload.testing._lmstudio_events import Delta, Event, Finished, Started, TurnPlan, TurnResult
from offload.testing._lmstudio_http import Call, Handler, JsonKind, check_types, drive, event_stream, sse_data
from offload.testing._lmstudio_text import FakeMessage
from offload.testing._schema_fill import fill_schema

EMBEDDING_DIMENSIONS = 768
CHAT_TYPES: dict[str, tuple[JsonKind, ...]] = {
    "model": ("string",),
    "messages": ("array",),
    "max_tokens": ("integer",),
    "temperature": ("number",),
    "top_p": ("number",),
    "stop": ("string", "array"),
    "seed": ("integer",),
    "stream": ("boolean",),
    "stream_options": ("object",),
    "response_format": ("object",),
}


def lm_id(prefix: str, length: int = 21) -> str:
    """LM Studio-style ids: ``chatcmpl-`` / ``msg_`` + lowercase base-36 characters."""
    alphabet = string.ascii_lowercase + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def openai_type_error(name: str, expected: str) -> errors.ApiError:
    return errors.openai_invalid(f"'{name}' must be of type {expected}", name)


def content_parts(content: Any) -> tuple[str, list[str]]:
    """(text, images) of a message ``content``: a string or a list of typed parts (any compat family)."""
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[str] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text"):
            texts.append(str(part.get("text", "")))
        elif kind in ("image_url", "input_image", "image"):
            url = part.get("image_url")
            images.append(str(url.get("url", "")) if isinstance(url, dict) else str(url or "image"))
    return "\n".join(texts), images


def split_conversation(
    messages: Sequence[tuple[str, str, list[str]]],
) -> tuple[str | None, tuple[FakeMessage, ...], str, tuple[str, ...]]:
    """(system prompt, history, last user text, its images) of (role, text, images) messages."""
    system = "\n\n".join(text for role, text, _ in messages if role in ("system", "developer")) or None
    convo = [m for m in messages if m[0] not in ("system", "developer")]
    last_user = max((i for i, m in enumerate(convo) if m[0] == "user"), default=-1)
    if last_user < 0:
        return system, tuple(FakeMessage(r, t) for r, t, _ in convo), "", ()
    history = tuple(FakeMessage(r, t) for r, t, _ in convo[:last_user])
    return system, history, convo[last_user][1], tuple(convo[last_user][2])


def parse_messages(value: Any, field: str = "messages") -> list[tuple[str, str, list[str]]]:
    if not isinstance(value, list) or not value:
        raise errors.openai_invalid(f"'{field}' must be a non-empty array", field)
    parsed = []
    for message in value:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise errors.openai_invalid(f"every item of '{field}' needs a 'role' and 'content'", field)
        text, images = content_parts(message.get("content"))
        parsed.append((message["role"], text, images))
    return parsed


def routes(engine: Engine) -> list[tuple[str, str, Handler]]:
    """(method, path, handler) of the OpenAI-compatible routes."""

    async def list_models(call: Call) -> Response:
        instances = engine.registry.instances()
        if engine.config.jit:
            ids = [model.key for model, _ in engine.registry.listed()]
            ids += [i.id for i in instances if i.id not in ids]
        else:
            ids = [i.id for i in instances]
        data = [{"id": name, "object": "model", "owned_by": "organization_owner"} for name in ids]
        return JSONResponse({"data": data, "object": "list"})

    async def chat_completions(call: Call) -> Response:
        return await chat_completions_response(engine, call)

    async def embeddings(call: Call) -> Response:
        return await embeddings_response(engine, call)

    return [
        ("GET", "/v1/models", list_models),
        ("POST", "/v1/chat/completions", chat_completions),
        ("POST", "/v1/embeddings", embeddings),
    ]


def _schema(response_format: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if response_format is None or response_format.get("type") == "text":
        return None
    spec = response_format.get("json_schema")
    if response_format.get("type") != "json_schema" or not isinstance(spec, dict):
        raise errors.ApiError(400, {"error": "'response_format.type' must be 'json_schema' or 'text'"})
    schema = spec.get("schema")
    return schema if isinstance(schema, dict) else {}


def _stops(stop: str | list[Any] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    return (stop,) if isinstance(stop, str) else tuple(str(s) for s in stop)


async def chat_completions_response(engine: Engine, call: Call) -> Response:
    """``POST /v1/chat/completions`` (also behind ``/api/v0/chat/completions``)."""
    body = call.body
    check_types(body, CHAT_TYPES, openai_type_error)
    system, history, user_text, images = split_conversation(parse_messages(body.get("messages")))
    target = engine.resolve_compat(str(body.get("model") or ""))
    max_tokens = body.get("max_tokens")
    plan = TurnPlan(
        target=target,
        route=call.path,
        user_text=user_text,
        system_prompt=system,
        history=history,
        images=tuple(images),
        max_output_tokens=None if max_tokens is None or max_tokens < 0 else max_tokens,
        json_schema=_schema(body.get("response_format")),
        reasoning=target.model.default_reasoning,
        stop=_stops(body.get("stop")),
        fault=call.fault,
        request=body,
    )
    completion_id, created = lm_id("chatcmpl-"), int(time.time())
    tool = forced_call(body, user_text)
    events = engine.run(plan)
    try:
        if call.stream:
            head, events = await prestart(events)
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = ChunkStream(completion_id, created, include_usage, tool)
            return event_stream(drive(call, events, chunks, head))
        result = await collect(events)
    except TurnError as err:
        raise errors.openai_turn_error(err) from err
    whole = completion_body(result, completion_id, created)
    if tool is not None:
        choice = whole["choices"][0]
        choice["message"]["content"] = None
        choice["message"]["tool_calls"] = [tool]
        choice["finish_reason"] = "tool_calls"
    return JSONResponse(whole)


def forced_call(body: Mapping[str, Any], user_text: str) -> dict[str, Any] | None:
    """The call a forced ``tool_choice`` makes: the named tool (or the first, for "required")."""
    tools = [
        t for t in body.get("tools") or [] if isinstance(t, dict) and isinstance(t.get("function"), dict)
    ]
    choice = body.get("tool_choice")
    if not tools or choice in (None, "auto", "none"):
        return None
    wanted = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    fn = next((t["function"] for t in tools if wanted in (None, t["function"].get("name"))), None)
    if fn is None:
        raise errors.openai_invalid(f"tool_choice names an unknown function {wanted!r}", "tool_choice")
    arguments = fill_schema(fn.get("parameters") or {"type": "object"}, user_text.split())
    return {
        "id": lm_id("call_", 12),
        "type": "function",
        "function": {"name": fn.get("name", ""), "arguments": json.dumps(arguments)},
    }


def _usage(result: TurnResult) -> dict[str, Any]:
    return {
        "prompt_tokens": result.input_tokens,
        "completion_tokens": result.output_tokens,
        "total_tokens": result.input_tokens + result.output_tokens,
        "completion_tokens_details": {"reasoning_tokens": result.reasoning_tokens},
    }


def completion_body(result: TurnResult, completion_id: str, created: int) -> dict[str, Any]:
    """A ``chat.completion`` (recorded shape)."""
    message = {
        "role": "assistant",
        "content": result.text,
        "reasoning_content": result.reasoning,
        "tool_calls": [],
    }
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": result.instance_id,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": result.finish_reason}
        ],
        "usage": _usage(result),
        "stats": {},
        "system_fingerprint": result.instance_id,
    }


class ChunkStream:
    """Renders engine events as ``chat.completion.chunk`` lines ending with ``data: [DONE]``."""

    def __init__(
        self, completion_id: str, created: int, include_usage: bool, tool: dict[str, Any] | None = None
    ) -> None:
        self.completion_id = completion_id
        self.created = created
        self.include_usage = include_usage
        self.tool = tool
        self.model = ""

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.model,
            "choices": choices,
        }
        return sse_data(chunk | extra)

    def _choice(self, delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

    def render(self, event: Event) -> list[bytes]:
        if isinstance(event, Started):
            self.model = event.instance_id
        elif isinstance(event, Delta):
            if self.tool is not None and event.channel != "reasoning":
                return []  # a forced call replaces the text
            key = "reasoning_content" if event.channel == "reasoning" else "content"
            return [self._chunk(self._choice({"role": "assistant", key: event.text}))]
        elif isinstance(event, Finished):
            chunks = self._call_chunks() if self.tool is not None else []
            finish = "tool_calls" if self.tool is not None else event.result.finish_reason
            chunks.append(self._chunk(self._choice({}, finish)))
            if self.include_usage:
                chunks.append(self._chunk([], usage=_usage(event.result)))
            return [*chunks, sse_data("[DONE]")]
        return []

    def _call_chunks(self) -> list[bytes]:
        assert self.tool is not None
        fn = self.tool["function"]
        first = {
            "index": 0,
            "id": self.tool["id"],
            "type": "function",
            "function": {"name": fn["name"], "arguments": ""},
        }
        out = [self._chunk(self._choice({"role": "assistant", "tool_calls": [first]}))]
        text = fn["arguments"]
        for i in range(0, len(text), 8):
            piece = {"index": 0, "function": {"arguments": text[i : i + 8]}}
            out.append(self._chunk(self._choice({"tool_calls": [piece]})))
        return out

    def error(self, err: TurnError) -> list[bytes]:
        return [sse_data({"error": err.message})]


def embedding_vector(text: str) -> list[float]:
    """A deterministic unit vector for ``text``."""
    rng = random.Random(text)
    values = [rng.gauss(0.0, 1.0) for _ in range(EMBEDDING_DIMENSIONS)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


async def embeddings_response(engine: Engine, call: Call) -> Response:
    """``POST /v1/embeddings`` (also behind ``/api/v0/embeddings``)."""
    value = call.body.get("input")
    inputs = [value] if isinstance(value, str) else value
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
        raise errors.openai_invalid("'input' must be a string or a non-empty array of strings", "input")
    target = engine.resolve_embedding(str(call.body.get("model") or ""))
    try:
        instance = await engine.ensure_instance(target, call.path, call.body.get("ttl"))
    except TurnError as err:
        raise errors.openai_turn_error(err) from err
    data = [
        {"object": "embedding", "embedding": embedding_vector(t), "index": i} for i, t in enumerate(inputs)
    ]
    usage = {"prompt_tokens": 0, "total_tokens": 0}
    return JSONResponse({"object": "list", "data": data, "model": instance.id, "usage": usage})
