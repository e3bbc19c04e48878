"""``AnthropicFake``: a faithful loopback fake of the Anthropic Messages API.

Serves ``POST /v1/messages`` (whole and streamed), ``POST /v1/messages/count_tokens`` and
``GET /v1/models`` in Anthropic's exact shapes, so offload's provider and the official
``anthropic`` SDK can both talk to it. Checks ``x-api-key`` and ``anthropic-version`` like the
real API; errors use ``{"type": "error", "error": {"type", "message"}, "request_id"}`` with
Anthropic's statuses (400/401/402/403/404/413/429/500/529). Streams send ``message_start``,
``content_block_start``, ``ping``, deltas, ``content_block_stop``, ``message_delta`` and
``message_stop`` in order. ``thinking`` requests get a thinking block; a forced tool
(``tool_choice: {"type": "tool"}``) gets a ``tool_use`` block with schema-valid input.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from offload.testing._fake_replies import Reply, count_tokens, pieces, plan_reply, prompt_of
from offload.testing._hosted_fake import CutResponse, Fault, HostedFake, SseResponse, pause, sse

IMAGE_TOKENS = 100
SIGNATURE = "ZmFrZS10aGlua2luZy1zaWduYXR1cmU="
THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: (
        "billing_error",
        "Your credit balance is too low to access the Anthropic API. "
        "Please go to Plans & Billing to upgrade or purchase credits.",
    ),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "model: {model}"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def error_body(type_: str, message: str, code: str | None = None) -> dict[str, Any]:
    """Anthropic's error envelope (``details.error_code`` only when there is a finer code)."""
    error: dict[str, Any] = {"type": type_, "message": message}
    if code:
        error["details"] = {"error_code": code}
    return {"type": "error", "error": error, "request_id": f"req_{uuid.uuid4().hex}"}


def error_response(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON error response with Anthropic's ``request-id`` header."""
    return JSONResponse(
        dict(body), status_code=status, headers={"request-id": body["request_id"], **(headers or {})}
    )


def fail(status: int, type_: str, message: str) -> Response:
    """An error response built from its parts."""
    return error_response(status, error_body(type_, message))


def fault_error(fault: Fault, model: str, window: int) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, body and headers of an injected failure."""
    if fault.name in ("context_length_exceeded", "prompt_too_long"):
        message = f"prompt is too long: {window + 1} tokens > {window} maximum"
        return 400, error_body("invalid_request_error", message), {}
    headers = {"retry-after": f"{fault.retry_after:g}"} if fault.status == 429 and fault.retry_after else {}
    if fault.name == "spend_limit":
        message = "Your organization has reached its enforced spend limit for this period."
        return 429, error_body("rate_limit_error", message, "enforced_spend_limit_reached"), {}
    generic = STATUS_ERRORS[400] if fault.status < 500 else STATUS_ERRORS[500]
    type_, message = STATUS_ERRORS.get(fault.status, generic)
    return fault.status, error_body(type_, message.format(model=model or "unknown")), headers


def display_name(model: str) -> str:
    """``claude-sonnet-4-5-20250929`` → ``Claude Sonnet 4.5``."""
    words = [w for w in model.split("-") if not (w.isdigit() and len(w) == 8)]
    out: list[str] = []
    for w in words:
        if w.isdigit() and out and out[-1][-1].isdigit():
            out[-1] += f".{w}"
        else:
            out.append(w.capitalize() if not w.isdigit() else w)
    return " ".join(out)


def json_pieces(text: str, size: int = 12) -> list[str]:
    """``text`` cut into fixed-size ``partial_json`` fragments."""
    return [text[i : i + size] for i in range(0, len(text), size)]


class AnthropicFake(HostedFake):
    """A loopback Anthropic API; clients take ``url`` as their base URL."""

    named_faults: ClassVar[Mapping[str, int]] = {
        "invalid_request": 400,
        "context_length_exceeded": 400,
        "prompt_too_long": 400,
        "authentication_error": 401,
        "billing": 402,
        "permission_error": 403,
        "not_found": 404,
        "request_too_large": 413,
        "rate_limit": 429,
        "spend_limit": 429,
        "api_error": 500,
        "overloaded": 529,
    }
    default_context_window = 200_000

    def __init__(
        self,
        models: Iterable[str] = ("claude-sonnet-4-6", "claude-haiku-4-5-20251001"),
        *,
        api_key: str | None = None,
        context_windows: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(models, api_key=api_key, context_windows=context_windows)
        self._app = Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/messages/count_tokens", self._count_tokens, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/{path:path}", self._unknown, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
            ]
        )

    @property
    def app(self) -> Any:
        """The Starlette app."""
        return self._app

    # --- shared request handling -------------------------------------------------------------------

    def _headers_problem(self, request: Request) -> Response | None:
        if self.api_key is not None:
            bearer = request.headers.get("authorization", "")
            key = request.headers.get("x-api-key") or (bearer[7:] if bearer.startswith("Bearer ") else None)
            if not key:
                return fail(401, "authentication_error", "x-api-key header is required")
            if key != self.api_key:
                return fail(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return fail(400, "invalid_request_error", "anthropic-version: header is required")
        return None

    async def _begin(self, request: Request) -> tuple[Any, bool, Fault | None] | Response:
        """Record, apply faults, auth and version checks; the body on success."""
        body, ok = await self.record(request)
        fault = self.take_fault()
        await pause(fault)
        streaming = isinstance(body, dict) and bool(body.get("stream"))
        if fault is not None and fault.status and not (fault.midstream and streaming):
            model = str(body.get("model") or "") if isinstance(body, dict) else ""
            status, body, headers = fault_error(fault, model, self.window(model))
            return error_response(status, body, headers)
        problem = self._headers_problem(request)
        if problem is not None:
            return problem
        return body, ok, fault

    def _body_problem(self, body: Any, ok: bool) -> Response | None:
        if not ok or not isinstance(body, dict):
            return fail(400, "invalid_request_error", "There was an error parsing the body.")
        for field in ("model", "max_tokens", "messages"):
            if field not in body:
                return fail(400, "invalid_request_error", f"{field}: Field required")
        for i, m in enumerate(body["messages"] if isinstance(body["messages"], list) else []):
            if not isinstance(m, Mapping) or m.get("role") not in ("user", "assistant"):
                return fail(
                    400, "invalid_request_error", f"messages.{i}.role: Input should be 'user' or 'assistant'"
                )
        if body["model"] not in self.models:
            return fail(404, "not_found_error", f"model: {body['model']}")
        return self._thinking_problem(body)

    def _thinking_problem(self, body: Mapping[str, Any]) -> Response | None:
        thinking = body.get("thinking") or {}
        if thinking.get("type") != "enabled":
            return None  # "adaptive" needs no budget
        budget = int(thinking.get("budget_tokens") or 0)
        problem = None
        if budget < 1024:
            problem = "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        elif budget >= int(body["max_tokens"]):
            problem = (
                f"`max_tokens` must be greater than `thinking.budget_tokens`. Please consult {THINKING_DOCS}"
            )
        elif (body.get("tool_choice") or {}).get("type") in ("tool", "any"):
            problem = "Thinking may not be enabled when tool_choice forces tool use."
        elif body.get("temperature") not in (None, 1, 1.0):
            problem = (
                f"`temperature` may only be set to 1 when thinking is enabled. Please consult {THINKING_DOCS}"
            )
        return fail(400, "invalid_request_error", problem) if problem else None

    def _prompt_tokens(self, body: Mapping[str, Any]) -> tuple[int, str]:
        system = body.get("system") or ""
        system_text = system if isinstance(system, str) else prompt_of([{"content": system}])[0]
        everything, last_user, images = prompt_of(body.get("messages") or [])
        return count_tokens(system_text + everything) + IMAGE_TOKENS * images, last_user

    # --- messages -----------------------------------------------------------------------------------

    def _forced_tool(self, body: Mapping[str, Any]) -> Mapping[str, Any] | Response | None:
        choice = body.get("tool_choice") or {}
        if choice.get("type") != "tool":
            return None
        for tool in body.get("tools") or []:
            if isinstance(tool, Mapping) and tool.get("name") == choice.get("name"):
                return tool
        return fail(400, "invalid_request_error", f"tool_choice: tool '{choice.get('name')}' not found")

    async def _messages(self, request: Request) -> Response:
        begun = await self._begin(request)
        if isinstance(begun, Response):
            return begun
        body, ok, fault = begun
        problem = self._body_problem(body, ok)
        if problem is not None:
            return problem
        tool = self._forced_tool(body)
        if isinstance(tool, Response):
            return tool
        model = str(body["model"])
        prompt_tokens, last_user = self._prompt_tokens(body)
        if prompt_tokens > self.window(model):
            message = f"prompt is too long: {prompt_tokens} tokens > {self.window(model)} maximum"
            return fail(400, "invalid_request_error", message)
        reply = plan_reply(
            scripted=self.take_reply(),
            prompt=last_user,
            input_tokens=prompt_tokens,
            schema=(tool.get("input_schema") or {"type": "object"}) if tool is not None else None,
            max_tokens=int(body["max_tokens"]),
            reasoning=(body.get("thinking") or {}).get("type") in ("enabled", "adaptive"),
        )
        whole = self._message(model, reply, tool)
        if body.get("stream"):
            return self._stream(whole, fault)
        if fault is not None and fault.drop:
            return CutResponse(whole)
        return JSONResponse(whole, headers={"request-id": f"req_{uuid.uuid4().hex}"})

    def _message(self, model: str, reply: Reply, tool: Mapping[str, Any] | None) -> dict[str, Any]:
        blocks: list[dict[str, Any]] = []
        if reply.reasoning:
            blocks.append({"type": "thinking", "thinking": reply.reasoning, "signature": SIGNATURE})
        output = reply.output_tokens
        if tool is not None:
            value = _tool_input(reply.text)
            blocks.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_{uuid.uuid4().hex[:24]}",
                    "name": tool["name"],
                    "input": value,
                }
            )
            output = reply.reasoning_tokens + count_tokens(json.dumps(value))
            stop = "tool_use"
        else:
            blocks.append({"type": "text", "text": reply.text})
            stop = "end_turn" if reply.finish == "stop" else "max_tokens"
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": blocks,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {
                "input_tokens": reply.input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": output,
                "service_tier": "standard",
            },
        }

    def _stream(self, message: Mapping[str, Any], fault: Fault | None) -> Response:
        events, cut = stream_events(message)
        if fault is not None and fault.drop:
            return SseResponse(events[:cut], cut=True)
        if fault is not None and fault.midstream:
            _, body, _ = fault_error(fault, str(message["model"]), self.default_context_window)
            return SseResponse([*events[:cut], sse(body, "error")])
        return SseResponse(events)

    # --- other routes -------------------------------------------------------------------------------

    async def _count_tokens(self, request: Request) -> Response:
        begun = await self._begin(request)
        if isinstance(begun, Response):
            return begun
        body, ok, _ = begun
        if not ok or not isinstance(body, dict) or "messages" not in body:
            return fail(400, "invalid_request_error", "messages: Field required")
        return JSONResponse({"input_tokens": self._prompt_tokens(body)[0]})

    async def _models(self, request: Request) -> Response:
        begun = await self._begin(request)
        if isinstance(begun, Response):
            return begun
        limit = int(request.query_params.get("limit") or 20)
        after = request.query_params.get("after_id")
        models = list(self.models)
        start = models.index(after) + 1 if after in models else 0
        page = models[start : start + limit]
        data = [
            {"type": "model", "id": m, "display_name": display_name(m), "created_at": "2025-01-01T00:00:00Z"}
            for m in page
        ]
        return JSONResponse(
            {
                "data": data,
                "has_more": start + limit < len(models),
                "first_id": page[0] if page else None,
                "last_id": page[-1] if page else None,
            }
        )

    async def _unknown(self, request: Request) -> Response:
        await self.record(request)
        return fail(404, "not_found_error", "Not Found")


def _tool_input(text: str) -> dict[str, Any]:
    """The tool input for a reply: the reply itself when it is a JSON object, else ``{"text": reply}``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {"text": text}
    return value if isinstance(value, dict) else {"value": value}


def stream_events(message: Mapping[str, Any]) -> tuple[list[bytes], int]:
    """The SSE events for ``message`` and the index after the second content delta (faults cut there)."""
    usage = dict(message["usage"])
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1},
    }
    events = [sse({"type": "message_start", "message": start}, "message_start")]
    deltas: list[int] = []
    for index, block in enumerate(message["content"]):
        events.append(
            sse(
                {"type": "content_block_start", "index": index, "content_block": _empty(block)},
                "content_block_start",
            )
        )
        if index == 0:
            events.append(sse({"type": "ping"}, "ping"))
        for delta in _deltas(block):
            deltas.append(len(events))
            events.append(
                sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")
            )
        events.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    final = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events.append(
        sse(
            {"type": "message_delta", "delta": final, "usage": {"output_tokens": usage["output_tokens"]}},
            "message_delta",
        )
    )
    events.append(sse({"type": "message_stop"}, "message_stop"))
    cut = deltas[2] if len(deltas) > 2 else len(events) - 1
    return events, cut


def _empty(block: Mapping[str, Any]) -> dict[str, Any]:
    if block["type"] == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    if block["type"] == "tool_use":
        return {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
    return {"type": "text", "text": ""}


def _deltas(block: Mapping[str, Any]) -> list[dict[str, Any]]:
    if block["type"] == "thinking":
        out = [{"type": "thinking_delta", "thinking": p} for p in pieces(block["thinking"])]
        return [*out, {"type": "signature_delta", "signature": block["signature"]}]
    if block["type"] == "tool_use":
        text = json.dumps(block["input"])
        return [{"type": "input_json_delta", "partial_json": p} for p in json_pieces(text)]
    return [{"type": "text_delta", "text": p} for p in pieces(block["text"])]
