"""Byte-for-byte relay to a hosted provider that speaks the client's protocol.

The body goes out as received (it is rewritten only to aim it at another model, or to drop
thinking blocks Anthropic did not sign, which it would reject). Headers go out as received —
``anthropic-*`` betas included — minus hop-by-hop ones and ``accept-encoding`` (so the reply is
plain and its usage readable). Credentials: the provider's configured key when offload holds
one, else the client's own ``x-api-key``/``Authorization`` (never the gateway's own key). The
reply streams back chunk by chunk as it arrives; ``UsageSniffer`` reads token counts from it on
the way without holding it.

The client session comes from the network seam (``offload.http.relay_session``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from offload.gateway.scenarios import Protocol, Step

if TYPE_CHECKING:
    import aiohttp

HOP_BY_HOP = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "proxy-connection",
        "accept-encoding",
    }
)
DROP_BACK = frozenset({"content-length", "connection", "keep-alive", "transfer-encoding"})
SNIFF_LIMIT = 8 * 1024 * 1024


def make_session() -> aiohttp.ClientSession:
    """The gateway's client session, built by the network seam (``offload.http.relay_session``)."""
    from offload.http import relay_session

    return relay_session()


def upstream_url(base_url: str, path: str, query: str) -> str:
    """``base_url`` + the client's path (one ``/v1`` when both carry it) + its query string."""
    base = base_url.rstrip("/")
    if base.endswith("/v1") and path.startswith("/v1/"):
        path = path[3:]
    return f"{base}{path}?{query}" if query else f"{base}{path}"


def upstream_headers(
    headers: Mapping[str, str], step: Step, protocol: Protocol, gateway_key: str | None
) -> dict[str, str]:
    """The headers to send upstream (see the module docstring for the credential rule)."""
    out = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
    if gateway_key is not None:
        for name in [k for k in out if k.lower() in ("x-api-key", "authorization")]:
            value = out[name]
            if value == gateway_key or value.removeprefix("Bearer ").removeprefix("bearer ") == gateway_key:
                del out[name]
    key = step.provider.api_key
    if key:
        for name in [k for k in out if k.lower() in ("x-api-key", "authorization")]:
            del out[name]
        if protocol == "anthropic":
            out["x-api-key"] = key
        else:
            out["Authorization"] = f"Bearer {key}"
    out.update(step.provider.headers)
    return out


def prepare_body(raw: bytes, body: Mapping[str, Any], step: Step, protocol: Protocol, model: str) -> bytes:
    """The bytes to send: ``raw`` itself unless the model must change or unsigned thinking must go."""
    changed: dict[str, Any] | None = None
    if step.model != model:
        changed = {**body, "model": step.model}
    if protocol == "anthropic" and b'"thinking"' in raw:
        messages = body.get("messages")
        cleaned = strip_unsigned_thinking(messages) if isinstance(messages, list) else None
        if cleaned is not None:
            changed = {**(changed or body), "messages": cleaned}
    if changed is None:
        return raw
    return json.dumps(changed, ensure_ascii=False, separators=(",", ":")).encode()


def strip_unsigned_thinking(messages: list[Any]) -> list[Any] | None:
    """``messages`` without thinking blocks that carry no signature; ``None`` when there were none."""
    out: list[Any] = []
    dropped = False
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        if not isinstance(content, list) or message.get("role") != "assistant":
            out.append(message)
            continue
        kept = [b for b in content if not _unsigned(b)]
        if len(kept) != len(content):
            dropped = True
            message = {**message, "content": kept or [{"type": "text", "text": ""}]}
        out.append(message)
    return out if dropped else None


def _unsigned(block: Any) -> bool:
    if not isinstance(block, Mapping) or block.get("type") != "thinking":
        return False
    signature = block.get("signature")
    return not (isinstance(signature, str) and signature)


def reply_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The upstream reply's headers that go back to the client."""
    return {k: v for k, v in headers.items() if k.lower() not in DROP_BACK}


class UsageSniffer:
    """Reads input/output token counts from a relayed reply, whole or streamed, as it passes."""

    def __init__(self, stream: bool) -> None:
        self.stream = stream
        self.input_tokens = 0
        self.output_tokens = 0
        self._buffer = bytearray()
        self._whole = bytearray()

    def feed(self, chunk: bytes) -> None:
        """Look at one chunk (cheap: only lines that mention usage are parsed)."""
        if not self.stream:
            if len(self._whole) < SNIFF_LIMIT:
                self._whole += chunk
            return
        self._buffer += chunk
        if b"\n" not in chunk:
            return
        *lines, rest = bytes(self._buffer).split(b"\n")
        self._buffer = bytearray(rest)
        for line in lines:
            if line.startswith(b"data:") and b"usage" in line:
                self._read(line[5:])

    def finish(self) -> None:
        """Parse what a whole (non-streamed) reply held."""
        if not self.stream and self._whole:
            self._read(bytes(self._whole))

    def _read(self, data: bytes) -> None:
        try:
            value = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(value, dict):
            return
        for holder in (value, value.get("message"), value.get("response")):
            if isinstance(holder, dict) and isinstance(holder.get("usage"), dict):
                self._take(holder["usage"])

    def _take(self, usage: Mapping[str, Any]) -> None:
        def num(*keys: str) -> int:
            return sum(v for k in keys if isinstance(v := usage.get(k), int))

        inputs = num(
            "input_tokens", "prompt_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"
        )
        outputs = num("output_tokens", "completion_tokens")
        self.input_tokens = max(self.input_tokens, inputs)
        self.output_tokens = max(self.output_tokens, outputs)
