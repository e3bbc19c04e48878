"""Legacy routes of the LM Studio fake: ``/api/v0/*`` (LM Studio 0.3.6+) and ``/v1/completions``.

``/api/v0`` lists models in its own shape (``state``, ``arch``, ``compatibility_type``), and its
chat and completion answers are the OpenAI ones plus ``stats``, ``model_info`` and ``runtime``.
``/v1/completions`` (and ``/api/v0/completions``) take a raw ``prompt`` — no chat template — and
answer ``text_completion`` objects, streamed as ``data:`` chunks ending with ``[DONE]``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.responses import JSONResponse, Response

from offload.testing import _lmstudio_errors as errors
from offload.testing import _lmstudio_openai as openai
from offload.testing._lmstudio_engine import Engine, collect, prestart
from offload.testing._lmstudio_errors import TurnError
from offload.testing._lmstudio_events import Delta, Event, Finished, Started, TurnPlan, TurnResult
from offload.testing._lmstudio_http import Call, Handler, JsonKind, check_types, drive, event_stream, sse_data
from offload.testing._lmstudio_models import FakeModel, Instance

COMPLETION_TYPES: dict[str, tuple[JsonKind, ...]] = {
    "model": ("string",),
    "prompt": ("string",),
    "max_tokens": ("integer",),
    "temperature": ("number",),
    "top_p": ("number",),
    "stop": ("string", "array"),
    "seed": ("integer",),
    "stream": ("boolean",),
    "ttl": ("integer", "number"),
}
RUNTIME = {"name": "llama.cpp-linux-x86_64", "version": "1.0.0", "supported_formats": ["gguf"]}


def describe_v0(model: FakeModel, instances: list[Instance]) -> dict[str, Any]:
    """One ``GET /api/v0/models`` entry."""
    kind = "embeddings" if not model.is_llm else ("vlm" if model.vision else "llm")
    entry: dict[str, Any] = {
        "id": model.key,
        "object": "model",
        "type": kind,
        "publisher": model.publisher or (model.key.split("/", 1)[0] if "/" in model.key else "local"),
        "arch": model.architecture or "unknown",
        "compatibility_type": model.format or "gguf",
        "quantization": model.quantization,
        "state": "loaded" if instances else "not-loaded",
        "max_context_length": model.max_context_length,
    }
    if model.trained_for_tool_use:
        entry["capabilities"] = ["tool_use"]
    return entry


def routes(engine: Engine) -> list[tuple[str, str, Handler]]:
    """(method, path, handler) of ``/api/v0`` and ``/v1/completions``."""

    async def list_models(call: Call) -> Response:
        data = [describe_v0(model, instances) for model, instances in engine.registry.listed()]
        return JSONResponse({"object": "list", "data": data})

    async def one_model(call: Call) -> Response:
        name = str(call.request.path_params["model"])
        for model, instances in engine.registry.listed():
            if name in model.names():
                return JSONResponse(describe_v0(model, instances))
        raise errors.native_model_not_found(name)

    async def chat(call: Call) -> Response:
        response = await openai.chat_completions_response(engine, call)
        return response if call.stream else _with_v0_extras(engine, response)

    async def completions(call: Call) -> Response:
        response = await _completions(engine, call)
        v0 = call.path.startswith("/api/v0/")
        return _with_v0_extras(engine, response) if v0 and not call.stream else response

    async def embeddings(call: Call) -> Response:
        return await openai.embeddings_response(engine, call)

    return [
        ("GET", "/api/v0/models", list_models),
        ("GET", "/api/v0/models/{model:path}", one_model),
        ("POST", "/api/v0/chat/completions", chat),
        ("POST", "/api/v0/completions", completions),
        ("POST", "/api/v0/embeddings", embeddings),
        ("POST", "/v1/completions", completions),
    ]


def _with_v0_extras(engine: Engine, response: Response) -> Response:
    """An OpenAI answer plus the ``stats``/``model_info``/``runtime`` the v0 routes add."""
    body = json.loads(bytes(response.body))
    if response.status_code != 200 or not isinstance(body, dict) or "choices" not in body:
        return response
    usage = body.get("usage") or {}
    instance = engine.registry.instance(str(body.get("model")))
    finish = (body.get("choices") or [{}])[0].get("finish_reason")
    body["stats"] = {
        "tokens_per_second": 50.0,
        "time_to_first_token": 0.05,
        "generation_time": round(usage.get("completion_tokens", 0) / 50.0, 3),
        "stop_reason": "maxPredictedTokensReached" if finish == "length" else "eosFound",
    }
    if instance is not None:
        body["model_info"] = {
            "arch": instance.model.architecture or "unknown",
            "quant": instance.model.quantization,
            "format": instance.model.format,
            "context_length": instance.context_length,
        }
    body["runtime"] = RUNTIME
    return JSONResponse(body)


async def _completions(engine: Engine, call: Call) -> Response:
    body = call.body
    check_types(body, COMPLETION_TYPES, openai.openai_type_error)
    if not isinstance(body.get("prompt"), str):
        raise errors.openai_invalid("'prompt' is required and must be a string", "prompt")
    target = engine.resolve_compat(str(body.get("model") or ""))
    max_tokens = body.get("max_tokens")
    stop = body.get("stop")
    plan = TurnPlan(
        target=target,
        route=call.path,
        user_text=body["prompt"],
        max_output_tokens=None if max_tokens is None or max_tokens < 0 else max_tokens,
        stop=(stop,) if isinstance(stop, str) else tuple(str(s) for s in stop or ()),
        fault=call.fault,
        request=body,
    )
    completion_id, created = openai.lm_id("cmpl-"), int(time.time())
    events = engine.run(plan)
    try:
        if call.stream:
            head, events = await prestart(events)
            return event_stream(drive(call, events, CompletionStream(completion_id, created), head))
        result = await collect(events)
    except TurnError as err:
        raise errors.openai_turn_error(err) from err
    return JSONResponse(completion_body(result, completion_id, created))


def completion_body(result: TurnResult, completion_id: str, created: int) -> dict[str, Any]:
    """A ``text_completion`` object."""
    return {
        "id": completion_id,
        "object": "text_completion",
        "created": created,
        "model": result.instance_id,
        "choices": [
            {"index": 0, "text": result.text, "logprobs": None, "finish_reason": result.finish_reason}
        ],
        "usage": {
            "prompt_tokens": result.input_tokens,
            "completion_tokens": result.output_tokens,
            "total_tokens": result.input_tokens + result.output_tokens,
        },
    }


class CompletionStream:
    """Renders engine events as streamed ``text_completion`` chunks ending with ``[DONE]``."""

    def __init__(self, completion_id: str, created: int) -> None:
        self.completion_id = completion_id
        self.created = created
        self.model = ""

    def _chunk(self, text: str, finish: str | None) -> bytes:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        return sse_data(
            {
                "id": self.completion_id,
                "object": "text_completion",
                "created": self.created,
                "model": self.model,
                "choices": [choice],
            }
        )

    def render(self, event: Event) -> list[bytes]:
        if isinstance(event, Started):
            self.model = event.instance_id
        elif isinstance(event, Delta) and event.channel == "message":
            return [self._chunk(event.text, None)]
        elif isinstance(event, Finished):
            return [self._chunk("", event.result.finish_reason), sse_data("[DONE]")]
        return []

    def error(self, err: TurnError) -> list[bytes]:
        return [sse_data({"error": err.message})]
