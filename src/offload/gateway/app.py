"""The gateway's aiohttp application: routes, auth, body limit, and the walk down a request's chain.

Endpoints: ``POST /v1/messages`` (+ ``/count_tokens``), ``POST /v1/chat/completions``,
``POST /v1/responses``, ``GET /v1/models``, ``GET /health``, ``GET /metrics`` and Claude Code's
telemetry ``POST /api/event_logging/batch`` (answered at once). Paths are matched without the
query string (Claude Code sends ``?beta=true``). With a key, every route but ``/health`` and the
telemetry path needs it as ``x-api-key`` or a bearer token (compared in constant time). Bodies
over the limit get 413; unknown paths 404; errors use the calling protocol's shape. No CORS
headers are ever sent.

Each request walks its steps (``offload.gateway.scenarios``): relay to a same-protocol hosted
provider (``passthrough``) or a translated call (``local``); a step that fails before the first
byte hands over to the next. The outcome becomes one ledger row and a metrics update.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import ClientError, web

from offload.config import Config
from offload.errors import InputError
from offload.gateway import passthrough, wire
from offload.gateway.local import NextStep, serve_local
from offload.gateway.metrics import Metrics
from offload.gateway.models import model_list
from offload.gateway.scenarios import Facts, Protocol, Routes, Step, facts
from offload.gateway.usage import Accounting, Outcome, client_of
from offload.protocols.incoming import Incoming
from offload.tokens import estimate_prompt

if TYPE_CHECKING:
    from offload.ledger import Ledger
    from offload.routing.router import Router

WHOLE_LIMIT = 1024 * 1024
"""Whole replies up to this size are read at once and sent in one write; longer ones stream."""
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 529})
OPEN_PATHS = frozenset({"/health", "/api/event_logging/batch"})


class Gateway:
    """One running gateway: config compiled, one client session, one router."""

    def __init__(self, config: Config, router: Router, ledger: Ledger | None, key: str | None = None) -> None:
        self.config = config
        self.router = router
        self.key = key
        self._key_bytes = key.encode() if key else None
        self.routes = Routes(config)
        self.metrics = Metrics()
        self.accounting = Accounting(self.routes, ledger, self.metrics)
        self.local_max = config.settings.gateway.local_max_tokens
        self.body_limit = config.settings.gateway.body_limit_mb * 1024 * 1024
        self._models = model_list(config)
        self._session: Any = None
        self._tag_cache: dict[tuple[str, bool, bool, str], dict[str, str]] = {}

    # --- the app ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application serving this gateway."""
        app = web.Application(client_max_size=self.body_limit, handler_args={"max_field_size": 65536})
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics_page)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/responses", self.responses)
        app.router.add_post("/api/event_logging/batch", self.telemetry)
        app.router.add_route("*", "/{tail:.*}", self.not_found)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, app: web.Application) -> None:
        self._session = passthrough.make_session()

    async def _stop(self, app: web.Application) -> None:
        self.accounting.flush()
        if self._session is not None:
            await self._session.close()

    def _denied(self, request: web.Request) -> bool:
        if self._key_bytes is None:
            return False
        given = request.headers.get("x-api-key")
        if given is None:
            auth = request.headers.get("authorization", "")
            given = auth[7:] if auth[:7].lower() == "bearer " else None
        return given is None or not hmac.compare_digest(given.encode(), self._key_bytes)

    @staticmethod
    def _shape(request: web.Request) -> Protocol | None:
        return "anthropic" if "anthropic-version" in request.headers else None

    def _error(self, protocol: Protocol | None, status: int, message: str, **headers: str) -> web.Response:
        return web.Response(
            status=status,
            body=wire.error_bytes(protocol, status, message),
            content_type="application/json",
            headers=headers,
        )

    def _unauthorized(self, protocol: Protocol | None) -> web.Response:
        return self._error(
            protocol, 401, "missing or wrong gateway key (send it as x-api-key or a bearer token)"
        )

    # --- small endpoints -------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        """Liveness: always 200 while serving."""
        return web.json_response({"status": "ok"})

    async def telemetry(self, request: web.Request) -> web.Response:
        """Claude Code's telemetry: accepted and dropped, without reading it."""
        return web.json_response({})

    async def not_found(self, request: web.Request) -> web.Response:
        """Any other path."""
        return self._error(self._shape(request), 404, f"no such endpoint: {request.method} {request.path}")

    async def metrics_page(self, request: web.Request) -> web.Response:
        """Prometheus text."""
        if self._denied(request):
            return self._unauthorized(None)
        return web.Response(text=self.metrics.render(), content_type="text/plain", charset="utf-8")

    async def models(self, request: web.Request) -> web.Response:
        """The models this gateway answers for, in the caller's shape, with context windows."""
        protocol = self._shape(request)
        if self._denied(request):
            return self._unauthorized(protocol)
        return web.json_response(self._models.anthropic if protocol else self._models.openai)

    # --- protocol endpoints ----------------------------------------------------------------

    async def messages(self, request: web.Request) -> web.StreamResponse:
        """Anthropic Messages."""
        return await self._handle(request, "anthropic")

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """OpenAI Chat Completions."""
        return await self._handle(request, "chat")

    async def responses(self, request: web.Request) -> web.StreamResponse:
        """OpenAI Responses."""
        return await self._handle(request, "responses")

    async def _body(
        self, request: web.Request, protocol: Protocol
    ) -> tuple[bytes, dict[str, Any]] | web.Response:
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._error(
                protocol, 413, f"request body over the gateway's limit of {self.body_limit} bytes"
            )
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return self._error(protocol, 400, f"the request body is not valid JSON ({exc})")
        if not isinstance(body, dict):
            return self._error(protocol, 400, "the request body must be a JSON object")
        return raw, body

    async def count_tokens(self, request: web.Request) -> web.StreamResponse:
        """Token count: relayed when the request would be, else estimated locally."""
        if self._denied(request):
            return self._unauthorized("anthropic")
        got = await self._body(request, "anthropic")
        if isinstance(got, web.Response):
            return got
        raw, body = got
        found = facts("anthropic", body)
        scenario = self.routes.scenario("anthropic", found, len(raw), False)
        steps = self.routes.steps("anthropic", scenario, found.model)
        if steps and steps[0].relay:
            out = Outcome("anthropic", scenario, "", found.model, time.monotonic())
            try:
                return await self._relay(request, raw, body, found, steps[0], out, False)
            except NextStep as exc:
                return self._error("anthropic", exc.status, exc.message)
        try:
            incoming = wire.read("anthropic", {**body, "model": found.model or "unknown"})
        except InputError as exc:
            return self._error("anthropic", 400, exc.message)
        return web.json_response({"input_tokens": estimate_prompt(incoming.request)})

    async def _handle(self, request: web.Request, protocol: Protocol) -> web.StreamResponse:
        if self._denied(request):
            return self._unauthorized(protocol)
        got = await self._body(request, protocol)
        if isinstance(got, web.Response):
            return got
        raw, body = got
        found = facts(protocol, body)
        if not found.model:
            return self._error(protocol, 400, "model: expected a non-empty string")
        headers = request.headers
        scenario = self.routes.scenario(protocol, found, len(raw), "x-openai-subagent" in headers)
        client = client_of(headers.get("user-agent", ""), headers.get("originator", ""))
        out = Outcome(protocol, scenario, client, found.model, time.monotonic())
        try:
            return await self._walk(request, protocol, raw, body, found, out)
        finally:
            self.accounting.done(out, time.monotonic(), time.time())

    async def _walk(
        self,
        request: web.Request,
        protocol: Protocol,
        raw: bytes,
        body: dict[str, Any],
        found: Facts,
        out: Outcome,
    ) -> web.StreamResponse:
        steps = self.routes.steps(protocol, out.scenario, found.model)
        if not steps:
            why = "local-only mode and no local model in this chain" if self.routes.local_only else "no route"
            out.error, out.kind = why, "local_only_refused" if self.routes.local_only else "no_route"
            status = 403 if self.routes.local_only else 404
            return self._error(protocol, status, f"{why} for model {found.model!r} ({out.scenario})")
        incoming: Incoming | None = None
        failed: list[str] = []

        def finish() -> None:
            self.accounting.done(out, time.monotonic(), time.time())

        last = NextStep(502, "no step answered", "error")
        for index, step in enumerate(steps):
            out.step, out.fallback = step, bool(failed)
            has_next = index + 1 < len(steps)
            try:
                if step.relay:
                    return await self._relay(request, raw, body, found, step, out, has_next, failed)
                if incoming is None:
                    incoming = wire.read(protocol, body)
                headers = self._tags(step, out, failed)
                return await serve_local(
                    request, self.router, protocol, incoming, step, out, headers, self.local_max, finish
                )
            except InputError as exc:
                out.error, out.kind = exc.message, "invalid_request"
                return self._error(protocol, 400, exc.message)
            except NextStep as exc:
                last = exc
                failed.append(f"{step.name} ({exc.kind})")
        out.error, out.kind = last.message, last.kind
        extra = {"x-offload-fallback": ", ".join(failed)} if len(failed) > 1 else {}
        if last.retry_after is not None:
            extra["Retry-After"] = str(max(1, round(last.retry_after)))
        return self._error(protocol, last.status, last.message, **extra)

    async def _whole(
        self, upstream: Any, headers: dict[str, str], found: Facts, out: Outcome
    ) -> web.Response:
        """A small, whole (non-streamed) reply: read at once and sent in one write."""
        data = await _read_whole(upstream, out)
        if data is None:
            return self._error(out.protocol, 502, out.error or "upstream broke off")
        out.ttft = time.monotonic() - out.started
        sniffer = passthrough.UsageSniffer(False)
        sniffer.feed(data)
        sniffer.finish()
        out.input_tokens, out.output_tokens = sniffer.input_tokens, sniffer.output_tokens
        if upstream.status >= 400:
            out.error, out.kind = (
                f"{out.step.provider.id if out.step else 'upstream'} answered {upstream.status}",
                f"http_{upstream.status}",
            )
        return web.Response(status=upstream.status, body=data, headers=headers)

    def _tags(self, step: Step, out: Outcome, failed: list[str]) -> dict[str, str]:
        key = (step.name, step.local, step.relay, out.scenario)
        base = self._tag_cache.get(key)
        if base is None:
            where = "local" if step.local else ("relay" if step.relay else "hosted")
            base = {"x-offload-model": step.name, "x-offload-route": f"{out.scenario}/{where}"}
            if len(self._tag_cache) > 1024:
                self._tag_cache.clear()
            self._tag_cache[key] = base
        tags = dict(base)
        if failed:
            tags["x-offload-fallback"] = ", ".join(failed)
        return tags

    async def _relay(
        self,
        request: web.Request,
        raw: bytes,
        body: Mapping[str, Any],
        found: Facts,
        step: Step,
        out: Outcome,
        has_next: bool,
        failed: list[str] | None = None,
    ) -> web.StreamResponse:
        url = passthrough.upstream_url(step.provider.base_url, request.path, request.query_string)
        headers = passthrough.upstream_headers(request.headers, step, out.protocol, self.key)
        data = passthrough.prepare_body(raw, body, step, out.protocol, found.model)
        try:
            upstream = await self._session.post(url, data=data, headers=headers)
        except (TimeoutError, ClientError, OSError) as exc:
            raise NextStep(
                502, f"{step.provider.id} is not reachable ({type(exc).__name__})", "unreachable"
            ) from exc
        try:
            if has_next and upstream.status in RETRY_STATUSES:
                raise NextStep(
                    upstream.status, f"{step.provider.id} answered {upstream.status}", "upstream_error"
                )
            back = passthrough.reply_headers(upstream.headers)
            back.update(self._tags(step, out, failed or []))
            length = upstream.headers.get("content-length")
            if not found.stream and length is not None and length.isdigit() and int(length) <= WHOLE_LIMIT:
                return await self._whole(upstream, back, found, out)
            response = web.StreamResponse(status=upstream.status, headers=back)
            await response.prepare(request)
            sniffer = passthrough.UsageSniffer(found.stream)
            try:
                async for chunk in upstream.content.iter_any():
                    if out.ttft is None:
                        out.ttft = time.monotonic() - out.started
                    sniffer.feed(chunk)
                    await response.write(chunk)
            except ConnectionResetError:
                out.error, out.kind = "the client closed the connection mid-stream", "client_closed"
                return response
            except (TimeoutError, ClientError) as exc:
                out.error, out.kind = (
                    f"{step.provider.id} broke off mid-reply ({type(exc).__name__})",
                    "unreachable",
                )
                if found.stream:
                    message = f"upstream {step.provider.id} broke off mid-stream"
                    incoming = Incoming(request=_EMPTY, model=found.model, stream=True)
                    await response.write(wire.writer(out.protocol, incoming).error(502, message))
                return response
            sniffer.finish()
            out.input_tokens, out.output_tokens = sniffer.input_tokens, sniffer.output_tokens
            if upstream.status >= 400:
                out.error, out.kind = (
                    f"{step.provider.id} answered {upstream.status}",
                    f"http_{upstream.status}",
                )
            await response.write_eof()
            return response
        finally:
            upstream.release()


async def _read_whole(upstream: Any, out: Outcome) -> bytes | None:
    try:
        data: bytes = await upstream.read()
    except (TimeoutError, ClientError) as exc:
        out.error, out.kind = f"upstream broke off mid-reply ({type(exc).__name__})", "unreachable"
        return None
    return data


def _empty_request() -> Any:
    from offload.types import ChatRequest

    return ChatRequest(messages=())


_EMPTY = _empty_request()
