"""Which chain a gateway request takes: scenarios, client model names, and steps compiled once.

At start the config's ``offload.gateway`` chains are resolved into ``Step``s (a bad ref fails
then, naming its key path, never per request). Per request only cheap facts are read from
the parsed body; the scenario is, in order: ``longContext`` (body size over the threshold, at
~3.5 bytes a token), ``background`` (an Anthropic model name containing "haiku", or Codex's
``x-openai-subagent`` header), ``tools`` (the request carries tools), ``think`` (thinking or
reasoning effort asked for), else ``default``. A client model name listed under
``offload.gateway.models`` overrides the scenario's chain. ``passthrough`` steps are resolved
for the client's model name (the provider that declares it, else the protocol's own provider)
and cached.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from offload.config import Config
from offload.config_schema import PASSTHROUGH, Chain, GatewaySettings, ModelDef, ProviderConfig
from offload.errors import ConfigError
from offload.tokens import CHARS_PER_TOKEN

Protocol = Literal["anthropic", "chat", "responses"]
FAMILY: dict[Protocol, tuple[str, ...]] = {
    "anthropic": ("anthropic-messages",),
    "chat": ("openai-completions", "openai-responses"),
    "responses": ("openai-completions", "openai-responses"),
}
HOME: dict[Protocol, str] = {"anthropic": "anthropic", "chat": "openai", "responses": "openai"}
CACHE_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class Step:
    """One place a request may go: a provider and model, relayed unchanged or translated."""

    provider: ProviderConfig
    model: str
    relay: bool
    """True: forward the client's bytes to a same-protocol hosted provider; False: translate."""

    @property
    def name(self) -> str:
        """``provider/model``."""
        return f"{self.provider.id}/{self.model}"

    @property
    def local(self) -> bool:
        """True when this step keeps the call on this machine or network."""
        return self.provider.local

    @property
    def model_def(self) -> ModelDef | None:
        """The declared model, when the config declares it."""
        return self.provider.model(self.model)


@dataclass(frozen=True, slots=True)
class Facts:
    """What routing reads from a request body."""

    model: str
    stream: bool
    has_tools: bool
    thinking: bool


def facts(protocol: Protocol, body: Mapping[str, Any]) -> Facts:
    """The routing facts of a parsed body (``model`` may be empty when absent or malformed)."""
    model = body.get("model")
    tools = body.get("tools")
    if protocol == "anthropic":
        thinking_field = body.get("thinking")
        thinking = isinstance(thinking_field, Mapping) and thinking_field.get("type") in (
            "enabled",
            "adaptive",
        )
    elif protocol == "chat":
        effort = body.get("reasoning_effort")
        thinking = isinstance(effort, str) and effort not in ("none", "minimal")
    else:
        reasoning = body.get("reasoning")
        thinking = isinstance(reasoning, Mapping) and reasoning.get("effort") not in (None, "none", "minimal")
    return Facts(
        model=model if isinstance(model, str) else "",
        stream=body.get("stream") is True,
        has_tools=isinstance(tools, list) and bool(tools),
        thinking=thinking,
    )


class Routes:
    """The gateway's routing table, compiled from a ``Config``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        settings = config.settings.gateway
        defaults = GatewaySettings().scenarios
        self.threshold_bytes = int(settings.long_context_threshold * CHARS_PER_TOKEN)
        self.local_only = config.settings.local_only
        self._scenarios = {
            name: self._compile(
                chain, f"offload.gateway.scenarios.{name}", strict=chain != defaults.get(name)
            )
            for name, chain in settings.scenarios.items()
        }
        self._models = {
            name: self._compile(chain, f'offload.gateway.models["{name}"]')
            for name, chain in settings.models.items()
        }
        self._cache: dict[tuple[Protocol, str, str], tuple[Step, ...]] = {}

    def _compile(self, chain: Chain, path: str, *, strict: bool = True) -> tuple[Step | None, ...]:
        """Resolve a chain; a bad ref is an error naming its key, or skipped in a built-in default."""
        out: list[Step | None] = []
        for index, raw in enumerate((chain.primary, *chain.fallbacks)):
            if raw.strip().lower() == PASSTHROUGH:
                out.append(None)
                continue
            try:
                ref = self.config.resolve(raw)
            except ConfigError as exc:
                if not strict:
                    continue
                raise ConfigError(f"{path}[{index}]: {exc.message}", remedy=exc.remedy) from exc
            provider = self.config.providers[ref.provider]
            out.append(Step(provider, ref.model, relay=False))
        return tuple(out)

    def scenario(self, protocol: Protocol, facts: Facts, size: int, subagent: bool) -> str:
        """The scenario of a request (see the module docstring for the order)."""
        if size > self.threshold_bytes:
            return "longContext"
        if subagent or (protocol == "anthropic" and "haiku" in facts.model.lower()):
            return "background"
        if facts.has_tools:
            return "tools"
        if facts.thinking:
            return "think"
        return "default"

    def steps(self, protocol: Protocol, scenario: str, model: str) -> tuple[Step, ...]:
        """The steps for a request, in order; local-only drops every hosted one."""
        key = (protocol, scenario, model)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        compiled = self._models.get(model.lower()) or self._scenarios.get(scenario) or (None,)
        out: list[Step] = []
        for entry in compiled:
            step = self._aim(protocol, entry) if entry is not None else self.passthrough(protocol, model)
            if step is not None and step not in out and (step.local or not self.local_only):
                out.append(step)
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = result = tuple(out)
        return result

    def _aim(self, protocol: Protocol, step: Step) -> Step:
        """A configured step relays when its provider is hosted and speaks the client's protocol."""
        relay = not step.provider.local and step.provider.api in FAMILY[protocol]
        return Step(step.provider, step.model, relay) if relay else step

    def owner(self, protocol: Protocol, model: str) -> tuple[ProviderConfig, str] | None:
        """The provider that serves the client's model name, and the model id there."""
        providers = self.config.providers
        head, sep, rest = model.partition("/")
        if sep and head.lower() in providers and rest:
            return providers[head.lower()], rest
        for provider in providers.values():
            if provider.model(model) is not None and provider.api in FAMILY[protocol]:
                return provider, model
        for provider in providers.values():
            if provider.model(model) is not None:
                return provider, model
        home = providers.get(HOME[protocol])
        return (home, model) if home is not None else None

    def passthrough(self, protocol: Protocol, model: str) -> Step | None:
        """The client's own model at the provider that owns it (``None`` when no provider does)."""
        found = self.owner(protocol, model)
        if found is None or not model:
            return None
        provider, model_id = found
        relay = provider.api in FAMILY[protocol] and not provider.local
        return Step(provider, model_id, relay)
