"""Native REST v1 routes of the LM Studio fake (``/api/v1/*``).

Owns list/load/unload/download of models and ``POST /api/v1/chat`` with its strict request
validation, stateful threads (``response_id``/``previous_response_id``), reasoning validation,
and the SSE stream (``chat.start`` … ``chat.end``) rendered from the engine's events.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from offload.testing import _lmstudio_errors as errors
from offload.testing._lmstudio_engine import Engine, collect
from offload.testing._lmstudio_errors import TurnError
from offload.testing._lmstudio_events import (
    Delta,
    Event,
    Finished,
    LoadEnd,
    LoadProgress,
    LoadStart,
    PromptEnd,
    PromptProgress,
    PromptStart,
    Started,
    TurnPlan,
    TurnResult,
)
from offload.testing._lmstudio_http import (
    Call,
    Handler,
    JsonKind,
    check_keys,
    check_types,
    drive,
    event_stream,
    require,
)
from offload.testing._lmstudio_http import sse as _sse
from offload.testing._lmstudio_models import FakeModel
from offload.testing._lmstudio_text import FakeMessage
from offload.testing._lmstudio_tools import ToolCall, parse_integrations, plan_tool_call

LOAD_TYPES: dict[str, tuple[JsonKind, ...]] = {
    "model": ("string",),
    "context_length": ("integer",),
    "eval_batch_size": ("integer",),
    "flash_attention": ("boolean",),
    "num_experts": ("integer",),
    "offload_kv_cache_to_gpu": ("boolean",),
    "echo_load_config": ("boolean",),
}
LOAD_OPTIONS = ("eval_batch_size", "flash_attention", "num_experts", "offload_kv_cache_to_gpu")
CHAT_TYPES: dict[str, tuple[JsonKind, ...]] = {
    "model": ("string",),
    "input": ("string", "array"),
    "system_prompt": ("string",),
    "integrations": ("array",),
    "stream": ("boolean",),
    "temperature": ("number",),
    "top_p": ("number",),
    "top_k": ("integer",),
    "min_p": ("number",),
    "repeat_penalty": ("number",),
    "max_output_tokens": ("integer",),
    "reasoning": ("string",),
    "context_length": ("integer",),
    "store": ("boolean",),
    "previous_response_id": ("string",),
}


def routes(engine: Engine) -> list[tuple[str, str, Handler]]:
    """(method, path, handler) of every native route."""

    async def list_models(call: Call) -> Response:
        models = [model.describe(instances) for model, instances in engine.registry.listed()]
        return JSONResponse({"models": models})

    async def load(call: Call) -> Response:
        return await _load(engine, call)

    async def unload(call: Call) -> Response:
        check_keys(call.body, ("instance_id",))
        require(call.body, "instance_id")
        check_types(call.body, {"instance_id": ("string",)})
        instance_id = call.body["instance_id"]
        if engine.registry.remove_instance(instance_id) is None:
            raise errors.instance_not_found(instance_id)
        return JSONResponse({"instance_id": instance_id})

    async def download(call: Call) -> Response:
        return _download(engine, call)

    async def download_status(call: Call) -> Response:
        job_id = str(call.request.path_params["job_id"])
        job = engine.registry.job(job_id)
        if job is None:
            raise errors.job_not_found(job_id)
        return JSONResponse(job.status())

    async def chat(call: Call) -> Response:
        return await _chat(engine, call)

    return [
        ("GET", "/api/v1/models", list_models),
        ("POST", "/api/v1/models/load", load),
        ("POST", "/api/v1/models/unload", unload),
        ("POST", "/api/v1/models/download", download),
        ("GET", "/api/v1/models/download/status/{job_id}", download_status),
        ("POST", "/api/v1/chat", chat),
    ]


async def _load(engine: Engine, call: Call) -> Response:
    body = call.body
    check_keys(body, LOAD_TYPES)
    require(body, "model")
    check_types(body, LOAD_TYPES)
    model = engine.registry.find_model(body["model"])
    if model is None:
        raise errors.native_model_not_found(body["model"])
    options = {key: body[key] for key in LOAD_OPTIONS if key in body}
    try:
        instance, seconds = await engine.load(
            model, path=call.path, context_length=body.get("context_length"), options=options
        )
    except TurnError as err:
        raise errors.native_turn_error(err) from err
    reply: dict[str, Any] = {
        "type": model.type,
        "instance_id": instance.id,
        "load_time_seconds": seconds,
        "status": "loaded",
    }
    if body.get("echo_load_config"):
        reply["load_config"] = instance.load_config()
    return JSONResponse(reply)


def _download(engine: Engine, call: Call) -> Response:
    check_keys(call.body, ("model", "quantization"))
    require(call.body, "model")
    check_types(call.body, {"model": ("string",), "quantization": ("string",)})
    name = call.body["model"]
    model = engine.registry.find_model(name, downloaded=False)
    if model is None:
        raise errors.native_model_not_found(name)
    if engine.registry.is_downloaded(model.key):
        return JSONResponse({"status": "already_downloaded"})
    job = engine.registry.start_download(model)
    return JSONResponse(
        {
            "job_id": job.job_id,
            "status": "downloading",
            "total_size_bytes": model.size_bytes,
            "started_at": job.started_at,
        }
    )


def parse_input(value: str | list[Any]) -> tuple[str, tuple[str, ...]]:
    """``input`` as (text, image data URLs); text items may be ``"text"`` or ``"message"``."""
    if isinstance(value, str):
        return value, ()
    if not value:
        raise errors.invalid_value("input", '"input" must not be empty')
    texts: list[str] = []
    images: list[str] = []
    for index, item in enumerate(value):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind in ("text", "message") and isinstance(item.get("content"), str):
            texts.append(item["content"])
        elif kind == "image" and isinstance(item.get("data_url"), str):
            images.append(item["data_url"])
        else:
            raise errors.invalid_value(
                "input",
                f"Invalid input item at index {index}: expected "
                '{"type": "text", "content": string} or {"type": "image", "data_url": string}',
            )
    return "\n".join(texts), tuple(images)


def effective_reasoning(model: FakeModel, requested: str | None) -> str | None:
    """Validate ``reasoning`` against the model's options; models without reasoning accept only "off"."""
    allowed = model.reasoning_options or ("off",)
    if requested is not None and requested not in allowed:
        raise errors.invalid_value(
            "reasoning",
            f"Reasoning setting '{requested}' is not supported by model '{model.key}'. "
            f"Supported options: {', '.join(allowed)}.",
        )
    return (requested or model.default_reasoning) if model.supports_reasoning else None


def _thread(engine: Engine, body: dict[str, Any]) -> tuple[str | None, str | None, tuple[FakeMessage, ...]]:
    """(previous id, effective system prompt, earlier messages) of a chat request."""
    previous = body.get("previous_response_id")
    system = body.get("system_prompt")
    if previous is None:
        return None, system, ()
    thread = engine.thread(previous) if previous.startswith("resp_") else None
    if thread is None:
        raise errors.unknown_previous_response(previous)
    thread_system, history = thread
    return previous, system or thread_system, history


def _chat_plan(engine: Engine, call: Call) -> TurnPlan:
    body = call.body
    check_keys(body, CHAT_TYPES)
    require(body, "model", "input")
    check_types(body, CHAT_TYPES)
    target = engine.resolve_native(body["model"], body.get("context_length"))
    user_text, images = parse_input(body["input"])
    previous, system, history = _thread(engine, body)
    reasoning = effective_reasoning(target.model, body.get("reasoning"))
    if images and not target.model.vision:
        raise errors.native(400, f"Model '{target.model.key}' does not support image input.", param="input")
    return TurnPlan(
        target=target,
        route=call.path,
        user_text=user_text,
        system_prompt=system,
        history=history,
        images=images,
        parent_id=previous,
        store=body.get("store") is not False,
        max_output_tokens=body.get("max_output_tokens"),
        reasoning=reasoning,
        system_role_bug=engine.config.system_prompt_bug
        and previous is not None
        and body.get("system_prompt") is not None,
        fault=call.fault,
        request=body,
    )


async def _chat(engine: Engine, call: Call) -> Response:
    plan = _chat_plan(engine, call)
    integrations = parse_integrations(
        call.body.get("integrations") or [], auth_on=engine.config.auth_token is not None
    )
    tool = plan_tool_call(integrations, plan.user_text)
    if call.stream:
        return event_stream(drive(call, engine.run(plan), NativeStream(tool)))
    try:
        result = await collect(engine.run(plan))
    except TurnError as err:
        raise errors.native_turn_error(err) from err
    return JSONResponse(chat_body(result, tool))


def _output(reasoning: str, text: str, tool: ToolCall | None = None) -> list[dict[str, Any]]:
    output: list[dict[str, Any]] = [{"type": "reasoning", "content": reasoning}] if reasoning else []
    if tool is not None:
        output.append(tool.item())
    if text or not output:
        output.append({"type": "message", "content": text})
    return output


def chat_body(result: TurnResult, tool: ToolCall | None = None) -> dict[str, Any]:
    """The ``POST /api/v1/chat`` answer (recorded shape)."""
    stats: dict[str, Any] = {
        "input_tokens": result.input_tokens,
        "total_output_tokens": result.output_tokens,
        "reasoning_output_tokens": result.reasoning_tokens,
        "tokens_per_second": result.tokens_per_second,
        "time_to_first_token_seconds": result.time_to_first_token,
    }
    if result.load_seconds is not None:
        stats["model_load_time_seconds"] = result.load_seconds
    body: dict[str, Any] = {
        "model_instance_id": result.instance_id,
        "output": _output(result.reasoning, result.text, tool),
    }
    body["stats"] = stats
    if result.response_id is not None:
        body["response_id"] = result.response_id
    return body


def _event(kind: str, **fields: Any) -> bytes:
    return _sse(kind, {"type": kind, **fields})


class NativeStream:
    """Renders engine events as ``/api/v1/chat`` SSE events, opening and closing blocks in order."""

    def __init__(self, tool: ToolCall | None = None) -> None:
        self.tool = tool
        self.instance_id = ""
        self.block: str | None = None
        self.parts: dict[str, list[str]] = {"reasoning": [], "message": []}
        self.input_tokens = 0

    def render(self, event: Event) -> list[bytes]:
        if isinstance(event, Started):
            self.instance_id = event.instance_id
            return [_event("chat.start", model_instance_id=event.instance_id)]
        if isinstance(event, LoadStart):
            return [_event("model_load.start", model_instance_id=event.instance_id)]
        if isinstance(event, LoadProgress):
            return [
                _event("model_load.progress", model_instance_id=event.instance_id, progress=event.progress)
            ]
        if isinstance(event, LoadEnd):
            return [
                _event("model_load.end", model_instance_id=event.instance_id, load_time_seconds=event.seconds)
            ]
        if isinstance(event, PromptStart):
            return [_event("prompt_processing.start")]
        if isinstance(event, PromptProgress):
            return [_event("prompt_processing.progress", progress=event.progress)]
        if isinstance(event, PromptEnd):
            self.input_tokens = event.input_tokens
            calls = [_event(kind, **fields) for kind, fields in self.tool.events()] if self.tool else []
            return [_event("prompt_processing.end"), *calls]
        if isinstance(event, Delta):
            self.parts[event.channel].append(event.text)
            return [*self._switch(event.channel), _event(f"{event.channel}.delta", content=event.text)]
        if isinstance(event, Finished):
            return [*self._switch(None), _event("chat.end", result=chat_body(event.result, self.tool))]
        return []

    def _switch(self, block: str | None) -> list[bytes]:
        if block == self.block:
            return []
        chunks = [_event(f"{self.block}.end")] if self.block else []
        if block:
            chunks.append(_event(f"{block}.start"))
        self.block = block
        return chunks

    def error(self, err: TurnError) -> list[bytes]:
        """An ``error`` event, then ``chat.end`` with whatever was produced."""
        reasoning, text = "".join(self.parts["reasoning"]), "".join(self.parts["message"])
        partial = {
            "model_instance_id": self.instance_id,
            "output": _output(reasoning, text) if reasoning or text else [],
            "stats": {
                "input_tokens": self.input_tokens,
                "total_output_tokens": len(self.parts["reasoning"]) + len(self.parts["message"]),
                "reasoning_output_tokens": len(self.parts["reasoning"]),
            },
        }
        error = {"type": "internal_error", "message": err.message, "code": "unknown"}
        return [_event("error", error=error), _event("chat.end", result=partial)]
