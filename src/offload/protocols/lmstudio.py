"""LM Studio's native REST v1 (``/api/v1/*``): request bodies out, models/results/events in.

Pure functions, no I/O. The server validates keys strictly (an unknown key is a 400), so the
builders send only documented keys and only when set. Reasoning is kept apart from the answer:
``output[type=message]`` items make the content, ``output[type=reasoning]`` the reasoning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from offload.errors import BadResponse, InvalidRequest, ProviderError
from offload.protocols.errors import ErrorContext, classify
from offload.types import (
    ChatRequest,
    ChatResult,
    LoadedInstance,
    LoadResult,
    ModelInfo,
    Progress,
    ReasoningDelta,
    StreamEnd,
    StreamEvent,
    TextDelta,
    Timings,
    Usage,
)

MODELS = "/api/v1/models"
LOAD = "/api/v1/models/load"
UNLOAD = "/api/v1/models/unload"
CHAT = "/api/v1/chat"
GREETING = "/lmstudio-greeting"


def supports(request: ChatRequest) -> str | None:
    """Why the native chat route cannot carry ``request`` (``None`` when it can)."""
    if request.tools or any(m.tool_calls or m.role == "tool" for m in request.messages):
        return "tools or tool calls"
    if any(m.role == "assistant" for m in request.messages):
        return "assistant turns in the request (the native chat keeps history server-side)"
    if sum(1 for m in request.messages if m.role == "user") > 1:
        return "more than one user turn"
    if request.response_format is not None:
        return "a JSON schema (response_format)"
    return None


def chat_body(request: ChatRequest, *, model: str, stream: bool, send_system: bool = True) -> dict[str, Any]:
    """The ``/api/v1/chat`` body for ``request``; only documented keys, only when set."""
    reason = supports(request)
    if reason:
        raise InvalidRequest(f"LM Studio's native chat cannot carry {reason}")
    user = request.turns[-1] if request.turns else None
    if user is None:
        raise InvalidRequest("the request has no user message")
    body: dict[str, Any] = {"model": model}
    if user.images:
        items: list[dict[str, Any]] = [{"type": "text", "content": user.content}]
        items += [{"type": "image", "data_url": url} for url in user.images]
        body["input"] = items
    else:
        body["input"] = user.content
    if send_system and request.system:
        body["system_prompt"] = request.system
    optional = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_output_tokens": request.max_output_tokens,
        "reasoning": request.reasoning,
        "context_length": request.context_length,
        "previous_response_id": request.previous_response_id,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if not request.store:
        body["store"] = False
    if stream:
        body["stream"] = True
    return body


def load_body(
    key: str,
    *,
    context_length: int | None = None,
    flash_attention: bool | None = None,
    eval_batch_size: int | None = None,
) -> dict[str, Any]:
    """The ``/api/v1/models/load`` body."""
    body: dict[str, Any] = {"model": key}
    optional = {
        "context_length": context_length,
        "flash_attention": flash_attention,
        "eval_batch_size": eval_batch_size,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def _require(data: Any, key: str, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping) or key not in data:
        raise BadResponse(f"LM Studio sent an unexpected {what} body (no {key!r}): {str(data)[:200]}")
    return data


def parse_models(data: Any, *, provider: str = "lmstudio") -> list[ModelInfo]:
    """Read a ``GET /api/v1/models`` body."""
    body = _require(data, "models", "model list")
    return [parse_model(m, provider=provider) for m in body["models"] if isinstance(m, Mapping)]


def parse_model(m: Mapping[str, Any], *, provider: str = "lmstudio") -> ModelInfo:
    """Read one entry of the model list (tolerates missing and extra keys)."""
    caps = m.get("capabilities") or {}
    reasoning = caps.get("reasoning") or {}
    quant = m.get("quantization") or {}
    return ModelInfo(
        key=str(m["key"]),
        type=str(m.get("type") or "llm"),
        display_name=m.get("display_name"),
        publisher=m.get("publisher"),
        architecture=m.get("architecture"),
        params_string=m.get("params_string"),
        quantization=quant.get("name"),
        bits_per_weight=quant.get("bits_per_weight"),
        size_bytes=m.get("size_bytes"),
        max_context_length=m.get("max_context_length"),
        format=m.get("format"),
        vision=bool(caps.get("vision")),
        tool_use=bool(caps.get("trained_for_tool_use")),
        reasoning_options=tuple(reasoning.get("allowed_options") or ()),
        reasoning_default=reasoning.get("default"),
        loaded_instances=tuple(_instance(i) for i in m.get("loaded_instances") or ()),
        provider=provider,
    )


def _instance(raw: Mapping[str, Any]) -> LoadedInstance:
    config = dict(raw.get("config") or {})
    return LoadedInstance(
        id=str(raw["id"]),
        context_length=config.get("context_length"),
        parallel=config.get("parallel"),
        config=config,
    )


def parse_load(data: Any) -> LoadResult:
    """Read a load reply; accepts the pre-0.4 ``model_instance_id`` spelling too."""
    body = data if isinstance(data, Mapping) else {}
    instance = body.get("instance_id") or body.get("model_instance_id")
    if not instance:
        raise BadResponse(f"LM Studio sent an unexpected load reply: {str(data)[:200]}")
    return LoadResult(
        instance_id=str(instance),
        load_time_seconds=body.get("load_time_seconds"),
        type=str(body.get("type") or "llm"),
        status=str(body.get("status") or "loaded"),
        config=dict(body.get("load_config") or {}),
    )


def parse_chat(data: Any, *, provider: str = "lmstudio", model: str = "") -> ChatResult:
    """Read a ``/api/v1/chat`` reply (also the ``result`` of a streamed ``chat.end``)."""
    body = _require(data, "output", "chat")
    content: list[str] = []
    reasoning: list[str] = []
    for item in body["output"]:
        if not isinstance(item, Mapping):
            continue
        if item.get("type") == "message":
            content.append(str(item.get("content") or ""))
        elif item.get("type") == "reasoning":
            reasoning.append(str(item.get("content") or ""))
    stats = body.get("stats") or {}
    return ChatResult(
        content="".join(content).strip(),
        reasoning="".join(reasoning).strip(),
        model=model or str(body.get("model_instance_id") or ""),
        provider=provider,
        instance_id=body.get("model_instance_id"),
        response_id=body.get("response_id"),
        finish_reason="stop",
        usage=Usage(
            input_tokens=int(stats.get("input_tokens") or 0),
            output_tokens=int(stats.get("total_output_tokens") or 0),
            reasoning_tokens=int(stats.get("reasoning_output_tokens") or 0),
        ),
        timings=Timings(
            tokens_per_second=stats.get("tokens_per_second"),
            time_to_first_token=stats.get("time_to_first_token_seconds"),
            model_load_time=stats.get("model_load_time_seconds"),
        ),
    )


def parse_event(kind: str, data: Any, ctx: ErrorContext, *, model: str = "") -> StreamEvent | None:
    """One SSE event of a streamed chat as a core event (``None`` for events we do not surface).

    Dispatches on ``data["type"]`` (robust to missing ``event:`` lines). An ``error`` event
    raises the matching ``ProviderError``.
    """
    payload = data if isinstance(data, Mapping) else {}
    kind = str(payload.get("type") or kind)
    if kind == "message.delta":
        return TextDelta(str(payload.get("content") or ""))
    if kind == "reasoning.delta":
        return ReasoningDelta(str(payload.get("content") or ""))
    stage: Literal["model_load", "prompt_processing"] = (
        "model_load" if kind.startswith("model_load") else "prompt_processing"
    )
    if kind in ("model_load.progress", "prompt_processing.progress"):
        return Progress(stage, float(payload.get("progress") or 0.0))
    if kind in ("model_load.end", "prompt_processing.end"):
        return Progress(stage, 1.0, done=True)
    if kind == "chat.end":
        return StreamEnd(parse_chat(payload.get("result"), provider=ctx.provider, model=model))
    if kind == "error":
        raise stream_error(payload, ctx)
    return None


def stream_error(payload: Mapping[str, Any], ctx: ErrorContext) -> ProviderError:
    """The error an SSE ``error`` event describes (status guessed from its type)."""
    err = payload.get("error") or {}
    etype = str(err.get("type") or "") if isinstance(err, Mapping) else ""
    status = {
        "invalid_request": 400,
        "model_not_found": 404,
        "not_implemented": 501,
    }.get(etype, 500)
    return classify(status, payload, ctx)
