"""Building provider objects from config entries, one per provider id, reused across calls.

``api`` picks the implementation: ``lmstudio`` (native REST v1), ``openai-completions`` and
``openai-responses`` (any OpenAI-compatible server or OpenAI itself), ``anthropic-messages``,
and ``embedded`` (in-process llama.cpp). Implementations are imported only when first built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import httpx

from offload.config_schema import SUPPORTED_APIS, ProviderConfig
from offload.errors import ConfigError
from offload.http import RequestLog, default_timeout
from offload.providers.base import Provider

if TYPE_CHECKING:
    from offload.config import Config


@dataclass
class PoolOptions:
    """What every provider built by a pool shares."""

    transport: httpx.AsyncBaseTransport | None = None
    log: RequestLog | None = None
    models_dir: str | Path | None = None
    threads: int | None = None
    """Threads for the embedded engine (``offload.embedded.threads``)."""
    overrides: Mapping[str, str] = field(default_factory=dict)
    """Base URL overrides per provider id (``--base-url`` applies to ``lmstudio``)."""
    tokens: Mapping[str, str] = field(default_factory=dict)
    """API key overrides per provider id (``--api-token`` applies to ``lmstudio``)."""
    timeout: float | None = None
    """Read timeout for every HTTP provider (``--timeout``), over the config's ``timeoutSeconds``."""
    keep_warm: int | None = None
    """LM Studio idle TTL for the models offload's calls load (``offload.keepWarm``)."""

    @classmethod
    def for_config(cls, config: Config, **overrides: Any) -> PoolOptions:
        """Options carrying the config's embedded-engine and keep-warm settings, plus ``overrides``."""
        settings = config.settings
        overrides.setdefault("keep_warm", settings.keep_warm)
        return cls(models_dir=settings.models_dir, threads=settings.embedded_threads, **overrides)


class _HttpOptions(TypedDict):
    """The keyword arguments every HTTP provider takes from its config entry."""

    name: str
    local: bool
    timeout: httpx.Timeout | None
    transport: httpx.AsyncBaseTransport | None
    log: RequestLog | None
    headers: Mapping[str, str]


def build_provider(cfg: ProviderConfig, options: PoolOptions | None = None) -> Provider:
    """A provider object for one config entry."""
    opts = options or PoolOptions()
    if cfg.id in opts.overrides:
        cfg = replace(cfg, base_url=opts.overrides[cfg.id])
    key = opts.tokens.get(cfg.id) or cfg.api_key
    seconds = opts.timeout or cfg.timeout_seconds
    timeout = default_timeout(seconds) if seconds else None
    http: _HttpOptions = {
        "name": cfg.id,
        "local": cfg.local,
        "timeout": timeout,
        "transport": opts.transport,
        "log": opts.log,
        "headers": cfg.headers,
    }
    if cfg.api == "lmstudio":
        from offload.providers.lmstudio import LMStudioProvider
        from offload.settings import lmstudio_url

        return LMStudioProvider(lmstudio_url(cfg.base_url), api_token=key, keep_warm=opts.keep_warm, **http)
    if cfg.api in ("openai-completions", "openai-responses"):
        from offload.providers.openai_compat import OpenAIProvider

        routing = {m.id: dict(m.routing) for m in cfg.models if m.routing}
        return OpenAIProvider(cfg.base_url, api_key=key, api=cfg.api, routing=routing, **http)
    if cfg.api == "anthropic-messages":
        from offload.providers.anthropic import AnthropicProvider

        return AnthropicProvider(cfg.base_url, api_key=key, **http)
    if cfg.api == "embedded":
        from offload.providers.embedded import EmbeddedProvider

        return EmbeddedProvider(models_dir=opts.models_dir, name=cfg.id, n_threads=opts.threads)
    raise ConfigError(
        f"models.providers.{cfg.id}.api: offload does not speak {cfg.api!r}",
        remedy="use one of " + ", ".join(SUPPORTED_APIS),
    )


class ProviderPool:
    """Provider objects by id, built on first use and closed together."""

    def __init__(self, providers: Mapping[str, ProviderConfig], options: PoolOptions | None = None) -> None:
        self.configs = providers
        self.options = options or PoolOptions()
        self._built: dict[str, Provider] = {}

    def get(self, provider_id: str) -> Provider:
        """The provider for ``provider_id`` (built once)."""
        if provider_id not in self._built:
            cfg = self.configs.get(provider_id)
            if cfg is None:
                raise ConfigError(
                    f"unknown provider {provider_id!r}", remedy="declare it under models.providers"
                )
            self._built[provider_id] = build_provider(cfg, self.options)
        return self._built[provider_id]

    def put(self, provider_id: str, provider: Provider) -> None:
        """Use an existing provider object for ``provider_id`` (tests, embedding apps)."""
        self._built[provider_id] = provider

    async def aclose(self) -> None:
        """Close every provider built so far."""
        for provider in self._built.values():
            await provider.aclose()
        self._built.clear()
