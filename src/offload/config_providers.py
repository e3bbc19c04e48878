"""Reading ``models.providers`` of the config: each provider's address, API, key and models.

Validators in the style of ``offload.config_schema`` (every problem recorded with its key path,
never the value of a secret): base URLs that offload can reach, API keys from ``apiKey``,
``${VAR}`` or ``apiKeyEnv``, declared models with context windows and prices, and OpenRouter's
per-model provider preferences (``params.provider``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from offload.config_schema import ANY_ENV_NAME, ENV_NAME, Cost, ModelDef, Problems, ProviderConfig

# --- providers ------------------------------------------------------------------------------


def read_providers(
    merged: Mapping[str, Any], p: Problems, env: Mapping[str, str]
) -> dict[str, ProviderConfig]:
    """Build every provider from the merged ``models.providers`` object."""
    out: dict[str, ProviderConfig] = {}
    for pid, raw in merged.items():
        path = f"models.providers.{pid}"
        entry = p.obj(raw, path)
        if not entry:
            continue
        provider = _provider(pid.lower(), entry, path, p, env)
        if provider is not None:
            out[provider.id] = provider
    return out


def _provider(
    pid: str, e: Mapping[str, Any], path: str, p: Problems, env: Mapping[str, str]
) -> ProviderConfig | None:
    from offload.locality import is_local_url

    base_urls = p.strings(e.get("baseUrls"), f"{path}.baseUrls") or ()
    base_url = (
        p.string(e.get("baseUrl"), f"{path}.baseUrl", required=not base_urls) or (base_urls[:1] or ("",))[0]
    )
    api = p.string(e.get("api"), f"{path}.api") or "openai-completions"
    if api != "embedded":
        for i, url in enumerate(base_urls or (base_url,)):
            where = f"{path}.baseUrls[{i}]" if base_urls else f"{path}.baseUrl"
            if url and (problem := url_problem(url)):
                p.note(f"{where}: {problem}")
    key, source = _api_key(e, path, p, env)
    headers = p.obj(e.get("headers", {}), f"{path}.headers")
    for name, value in headers.items():
        if not isinstance(value, str):
            p.add(f"{path}.headers.{name}", "expected a string", value)
    models = e.get("models", [])
    if not isinstance(models, list):
        p.add(f"{path}.models", "expected a list", models)
        models = []
    defs = tuple(d for i, m in enumerate(models) if (d := _model(m, f"{path}.models[{i}]", p)) is not None)
    local = p.flag(e.get("local"), f"{path}.local")
    if local is None:
        local = api == "embedded" or is_local_url(base_url)
    return ProviderConfig(
        id=pid,
        base_url=base_url,
        api=api,
        api_key=key,
        api_key_source=source,
        headers={k: v for k, v in headers.items() if isinstance(v, str)},
        models=defs,
        local=local,
        timeout_seconds=p.number(e.get("timeoutSeconds"), f"{path}.timeoutSeconds", positive=True),
        base_urls=base_urls or ((base_url,) if base_url else ()),
    )


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a provider's base URL (``None`` when it can)."""
    from offload import redact

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL ({redact.text(str(exc))}): {redact.text(url)}"
    if parts.scheme not in ("http", "https"):
        return f"expected an http:// or https:// URL, got {redact.text(url)!r}"
    if not parts.hostname:
        return f"the URL has no host: {redact.text(url)!r}"
    if port == 0:
        return f"port 0 is not a port to connect to: {redact.text(url)!r}"
    return None


def _api_key(
    e: Mapping[str, Any], path: str, p: Problems, env: Mapping[str, str]
) -> tuple[str | None, str | None]:
    raw = e.get("apiKey")
    if raw is not None and not isinstance(raw, str):
        p.add(f"{path}.apiKey", "expected a string", raw)
        return None, None
    if raw:
        if ENV_NAME.match(raw) and env.get(raw):
            return env[raw], f"env {raw}"
        return raw, "config"
    names = e.get("apiKeyEnv")
    if isinstance(names, str) and ANY_ENV_NAME.match(names):
        names = [names]
    names = p.strings(names, f"{path}.apiKeyEnv") or ()
    for name in names:
        if not ANY_ENV_NAME.match(name):
            p.add(f"{path}.apiKeyEnv", "expected names of environment variables (like OPENAI_API_KEY)", name)
            return None, None
    for name in names:
        if env.get(name):
            return env[name], f"env {name}"
    return None, None


def _model(raw: Any, path: str, p: Problems) -> ModelDef | None:
    m = p.obj(raw, path)
    if not m:
        return None
    mid = p.string(m.get("id"), f"{path}.id", required=True)
    cost = p.obj(m.get("cost", {}), f"{path}.cost")
    inputs = p.strings(m.get("input"), f"{path}.input") or ("text",)
    for kind in inputs:
        if kind not in ("text", "image"):
            p.add(f"{path}.input", 'expected items "text" or "image"', list(inputs))
            break
    model = ModelDef(
        id=mid or "",
        name=p.string(m.get("name"), f"{path}.name"),
        reasoning=bool(p.flag(m.get("reasoning"), f"{path}.reasoning")),
        input=inputs,
        cost=Cost(
            input=p.number(cost.get("input"), f"{path}.cost.input") or 0.0,
            output=p.number(cost.get("output"), f"{path}.cost.output") or 0.0,
            cache_read=p.number(cost.get("cacheRead"), f"{path}.cost.cacheRead") or 0.0,
            cache_write=p.number(cost.get("cacheWrite"), f"{path}.cost.cacheWrite") or 0.0,
        ),
        context_window=p.positive_int(m.get("contextWindow"), f"{path}.contextWindow"),
        max_tokens=p.positive_int(m.get("maxTokens"), f"{path}.maxTokens"),
        api=p.string(m.get("api"), f"{path}.api"),
        routing=read_routing(
            p.obj(m.get("params", {}), f"{path}.params").get("provider"), f"{path}.params.provider", p
        ),
    )
    return model if mid else None


ROUTING_LISTS = ("order", "only", "ignore", "quantizations")
ROUTING_FLAGS = ("allow_fallbacks", "require_parameters")


def read_routing(raw: Any, path: str, p: Problems) -> dict[str, Any]:
    """OpenRouter provider preferences (``{order: ["DeepInfra"], allow_fallbacks: false}``)."""
    if raw is None:
        return {}
    prefs = dict(p.obj(raw, path))
    for key in ROUTING_LISTS:
        if key in prefs and p.strings(prefs[key], f"{path}.{key}") is None:
            del prefs[key]
    for key in ROUTING_FLAGS:
        if key in prefs and p.flag(prefs[key], f"{path}.{key}") is None:
            del prefs[key]
    if (
        "data_collection" in prefs
        and p.choice(prefs["data_collection"], f"{path}.data_collection", ("allow", "deny")) is None
    ):
        del prefs["data_collection"]
    return prefs
