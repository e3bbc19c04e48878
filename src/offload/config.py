"""The configuration: OpenClaw's JSON5 shape read into typed objects, with path-precise errors.

offload reads the keys OpenClaw users already have — ``models.mode``, ``models.providers.<id>``
{baseUrl, apiKey, api, headers, models[] {id, name, reasoning, input, cost, contextWindow,
maxTokens}}, ``agents.defaults.model`` {primary, fallbacks} (or a string) and
``agents.defaults.models`` aliases — and keeps its own settings under one extra top-level key,
``offload``. So an OpenClaw file works unchanged, and so does a file with only ``offload``.

Loading: JSON5 parse → ``${VAR}`` expansion (uppercase names; ``$${VAR}`` is a literal; a
missing variable is an error naming it) → validation of every key offload uses, collecting all
problems as ``path: expected …, got …`` lines → merge over the built-in providers
(``offload.catalog``) unless ``models.mode`` is ``"replace"``. Unknown keys outside ``offload``
are ignored (they belong to OpenClaw); unknown keys inside ``offload`` are errors.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from offload.catalog import AUTO, BUILTIN_PROVIDERS, DEFAULT_BASELINE, DEFAULT_FALLBACKS, DEFAULT_PRIMARY
from offload.config_providers import read_providers, read_routing
from offload.config_schema import (
    Chain,
    Cost,
    ModelDef,
    ModelRef,
    OffloadSettings,
    Problems,
    ProviderConfig,
    TaskSettings,
    read_offload,
)
from offload.errors import ConfigError
from offload.settings import config_path

NOT_TEXT_REMEDY = "point --config / OFFLOAD_CONFIG at the JSON5 file, or write one with `offload config init`"
MAX_DEPTH = 32
"""Deepest nesting a config may have (real ones use under ten levels)."""
ENV_REF = re.compile(r"\$(\$?)\{([A-Z_][A-Z0-9_]*)\}")
__all__ = ["Chain", "Config", "Cost", "ModelDef", "ModelRef", "ProviderConfig", "TaskSettings", "load_config"]


@dataclass(frozen=True, slots=True)
class Config:
    """Everything offload needs from the config file, typed and merged."""

    providers: Mapping[str, ProviderConfig]
    default: Chain
    aliases: Mapping[str, str] = field(default_factory=dict)
    settings: OffloadSettings = field(default_factory=OffloadSettings)
    """offload's own settings (the ``offload`` key), defaults filled in."""
    mode: str = "merge"
    source: Path | None = None
    merged: Mapping[str, Any] = field(default_factory=dict)

    # --- model refs ------------------------------------------------------------------------

    def resolve(self, ref: str) -> ModelRef:
        """Turn a ref or alias into ``provider/model``.

        Order: an alias (case-insensitive); ``provider/model`` when the part before the first
        slash is a known provider; a model id declared by exactly one provider; otherwise a
        model key on LM Studio (so ``google/gemma-3-1b`` works as LM Studio names it).
        """
        text = ref.strip()
        if not text:
            raise ConfigError("empty model reference")
        text = follow_aliases(self.aliases, text)
        head, sep, rest = text.partition("/")
        if sep and head.lower() in self.providers and rest:
            return ModelRef(head.lower(), rest)
        owners = [p.id for p in self.providers.values() if p.model(text)]
        if len(owners) == 1:
            return ModelRef(owners[0], text)
        local = "lmstudio" if "lmstudio" in self.providers else None
        if local is None:
            known = ", ".join(sorted(self.providers))
            raise ConfigError(
                f"unknown model {text!r}",
                remedy=f"write it as provider/model (providers: {known}) or define an alias",
            )
        return ModelRef(local, text)

    def chain(
        self, model: str | None = None, task: str | None = None, *, fallbacks: bool = True
    ) -> list[ModelRef]:
        """The candidates for a call: requested model, fallbacks, primary — deduplicated."""
        base = self.task(task).model or self.default
        refs: list[str] = []
        if model is not None:
            refs.append(model)
            if fallbacks:
                refs += [*base.fallbacks, base.primary]
        else:
            refs.append(base.primary)
            if fallbacks:
                refs += list(base.fallbacks)
        out: list[ModelRef] = []
        for raw in refs:
            resolved = self.resolve(raw)
            if resolved not in out:
                out.append(resolved)
        return out

    def model_def(self, ref: ModelRef) -> ModelDef | None:
        """The declared model behind ``ref``, if the config declares it."""
        provider = self.providers.get(ref.provider)
        return provider.model(ref.model) if provider else None

    def is_local(self, ref: ModelRef) -> bool:
        """True when ``ref``'s provider keeps data on this machine or network."""
        provider = self.providers.get(ref.provider)
        return bool(provider and provider.local)

    def task(self, name: str | None) -> TaskSettings:
        """Settings for task ``name`` (empty settings when none are configured)."""
        return self.settings.tasks.get(name or "", TaskSettings())

    def warnings(self) -> list[str]:
        """Legal but risky settings (``config check`` and ``doctor`` print them)."""
        from offload.locality import BUILTIN_HOSTED, host_of, is_hosted_domain, is_loopback_url

        out: list[str] = []
        raw = self.merged.get("models", {}).get("providers", {})
        for pid, provider in self.providers.items():
            entry = raw.get(pid)
            explicit = entry.get("local") if isinstance(entry, Mapping) else None
            host = host_of(provider.base_url)
            if pid in BUILTIN_HOSTED and provider.local and is_loopback_url(provider.base_url):
                out.append(
                    f"models.providers.{pid}.baseUrl points at this machine ({host}): the built-in hosted "
                    f"provider {pid} then counts as local, so it gets prompts under local-only and its API "
                    "key goes to that server; set local: false if it proxies the hosted API, or give the "
                    "local server its own provider id"
                )
            if explicit is True and is_hosted_domain(provider.base_url):
                out.append(
                    f"models.providers.{pid}.local: true is set on a hosted API ({host}): local-only "
                    "would send prompts to it; remove local: true"
                )
        return out

    def show(self) -> dict[str, Any]:
        """The effective merged config with every secret redacted (``offload config show``)."""
        from offload import redact

        raw = copy.deepcopy(dict(self.merged))
        for entry in raw.get("models", {}).get("providers", {}).values():
            if isinstance(entry, dict) and isinstance(entry.get("headers"), Mapping):
                entry["headers"] = redact.headers({str(k): str(v) for k, v in entry["headers"].items()})
        shown: dict[str, Any] = redact.json_value(raw)
        for pid, provider in self.providers.items():
            entry = shown.setdefault("models", {}).setdefault("providers", {}).setdefault(pid, {})
            entry["apiKey"] = redact.MASK if provider.api_key else None
            if provider.api_key_source:
                entry["apiKeySource"] = provider.api_key_source
            entry["local"] = provider.local
            entry.pop("apiKeyEnv", None)
        shown["source"] = str(self.source) if self.source else None
        return shown


# --- loading ---------------------------------------------------------------------------------


def load_config(path: str | Path | None = None, *, env: Mapping[str, str] | None = None) -> Config:
    """Read the config file (``path``, else ``OFFLOAD_CONFIG``, else the default location).

    A missing default file is fine (built-in defaults); a missing explicit file is an error.
    """
    environ = os.environ if env is None else env
    explicit = path is not None or bool(environ.get("OFFLOAD_CONFIG"))
    file = Path(path).expanduser() if path is not None else config_path(environ)
    if not file.exists():
        if explicit:
            raise ConfigError(
                f"config file {file} does not exist", remedy="create one with `offload config init`"
            )
        return parse_config({}, env=environ)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {file} is not UTF-8 text (byte {exc.start}); is it a binary file?",
            remedy=NOT_TEXT_REMEDY,
        ) from exc
    if "\x00" in text:
        raise ConfigError(
            f"config file {file} contains NUL bytes; is it a binary file?",
            remedy=NOT_TEXT_REMEDY,
        )
    return parse_config(parse_json5(text, file), env=environ, source=file)


def parse_json5(text: str, source: Path | None = None) -> dict[str, Any]:
    """Parse JSON5 text; syntax errors name the file, line and column."""
    import json5

    where = str(source) if source else "config"
    try:
        data = json5.loads(text)
    except ValueError as exc:
        detail = str(exc).replace("<string>:", "line ")
        raise ConfigError(f"{where}: invalid JSON5: {detail}") from exc
    except RecursionError as exc:
        raise ConfigError(f"{where}: nested too deeply to read", remedy="flatten the config") from exc
    if _depth(data) > MAX_DEPTH:
        raise ConfigError(f"{where}: nested deeper than {MAX_DEPTH} levels", remedy="flatten the config")
    try:
        data = _join_surrogates(data)
    except UnicodeError as exc:
        raise ConfigError(
            f"{where}: a string holds an unpaired \\u surrogate escape",
            remedy="write the character itself, or a complete \\ud83d\\ude00-style pair",
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source or 'config'}: the top level must be an object, got {type(data).__name__}")
    return data


def _join_surrogates(value: Any) -> Any:
    """Strings with ``\\uD83D\\uDE00``-style escapes made whole (the JSON5 parser leaves them split)."""
    if isinstance(value, str):
        if any("\ud800" <= c <= "\udfff" for c in value):
            return value.encode("utf-16", "surrogatepass").decode("utf-16")
        return value
    if isinstance(value, dict):
        return {_join_surrogates(k): _join_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_join_surrogates(v) for v in value]
    return value


def _depth(value: Any) -> int:
    """How deeply objects and lists nest in ``value`` (iterative: no recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def expand_env(value: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Replace ``${VAR}`` in every string; ``$${VAR}`` stays literal; missing vars are errors."""
    if isinstance(value, dict):
        return {k: expand_env(v, env, f"{path}.{k}" if path else k) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def sub(match: re.Match[str]) -> str:
        if match.group(1):
            return "${" + match.group(2) + "}"
        name = match.group(2)
        if not env.get(name):
            raise ConfigError(
                f"{path}: environment variable {name} is not set",
                remedy=f"export {name}=… or remove the ${{{name}}} reference",
            )
        return env[name]

    return ENV_REF.sub(sub, value)


def merge_providers(builtin: Mapping[str, Any], user: Mapping[str, Any]) -> dict[str, Any]:
    """Layer the user's providers over the built-ins: fields replace, model lists union."""
    merged = copy.deepcopy(dict(builtin))
    for pid, entry in user.items():
        if not isinstance(entry, Mapping):
            merged[pid] = entry
            continue
        base = merged.get(pid, {})
        combined = {**base, **entry}
        if isinstance(base, Mapping) and "models" in base and isinstance(entry.get("models"), list):
            ids = {m.get("id") for m in entry["models"] if isinstance(m, Mapping)}
            combined["models"] = [*entry["models"], *(m for m in base["models"] if m.get("id") not in ids)]
        merged[pid] = combined
    return merged


def parse_config(
    raw: Mapping[str, Any], *, env: Mapping[str, str] | None = None, source: Path | None = None
) -> Config:
    """Validate and merge a parsed config document; all problems are reported together."""
    environ = os.environ if env is None else env
    doc = expand_env(dict(raw), environ)
    problems = Problems()
    models = problems.obj(doc.get("models", {}), "models")
    mode = models.get("mode", "merge")
    if mode not in ("merge", "replace"):
        problems.add("models.mode", 'expected "merge" or "replace"', mode)
        mode = "merge"
    user_providers = problems.obj(models.get("providers", {}), "models.providers")
    base = {} if mode == "replace" else _builtins(environ)
    merged = merge_providers(base, user_providers)
    providers = read_providers(merged, problems, environ)
    _register_secrets(providers.values())
    agents = problems.obj(
        problems.obj(doc.get("agents", {}), "agents").get("defaults", {}), "agents.defaults"
    )
    settings = read_offload(problems.obj(doc.get("offload", {}), "offload"), problems)
    chain = _default_chain(agents.get("model"), problems, settings.embedded and "embedded" in providers)
    aliases = _aliases(agents.get("models", {}), problems)
    _alias_cycles(aliases, problems)
    providers = _model_routing(agents.get("models", {}), providers, problems)
    problems.raise_if_any(source)
    shown = {**doc, "models": {**models, "mode": mode, "providers": merged}}
    if settings.savings_baseline is None and _priced(providers):
        settings = replace(settings, savings_baseline=DEFAULT_BASELINE)
    return Config(
        providers=providers,
        default=chain,
        aliases=aliases,
        settings=settings,
        mode=mode,
        source=source,
        merged=shown,
    )


def _register_secrets(providers: Iterable[ProviderConfig]) -> None:
    """Hand every configured key, credential header and URL credential to ``offload.redact``."""
    from offload import redact

    for provider in providers:
        redact.register(provider.api_key)
        redact.register(*(v for k, v in provider.headers.items() if k.lower() not in redact.HARMLESS_HEADERS))
        for url in (provider.base_url, *provider.base_urls):
            redact.register_url(url)


def _builtins(env: Mapping[str, str]) -> dict[str, Any]:
    """The built-in providers, with LM Studio's address from ``LM_STUDIO_API_URL`` when set."""
    from offload.settings import lmstudio_url

    builtins = copy.deepcopy(BUILTIN_PROVIDERS)
    builtins["lmstudio"]["baseUrl"] = lmstudio_url(env=env)
    return builtins


def _priced(providers: Mapping[str, ProviderConfig]) -> bool:
    """True when the default savings baseline has a price in this config."""
    ref = ModelRef(*DEFAULT_BASELINE.split("/", 1))
    provider = providers.get(ref.provider)
    model = provider.model(ref.model) if provider else None
    return model is not None and not model.cost.free


def _default_chain(value: Any, problems: Problems, embedded: bool) -> Chain:
    if value is None:
        return Chain(DEFAULT_PRIMARY, DEFAULT_FALLBACKS if embedded else ())
    chain = problems.chain(value, "agents.defaults.model")
    return chain or Chain(DEFAULT_PRIMARY, DEFAULT_FALLBACKS if embedded else ())


def follow_aliases(aliases: Mapping[str, str], text: str) -> str:
    """Follow alias → ref links from ``text`` to a name that is no (other) alias; cycles are errors."""
    trail = [text.lower()]
    target = aliases.get(text.lower())
    while target is not None and target.strip().lower() not in trail:
        text = target.strip()
        trail.append(text.lower())
        target = aliases.get(text.lower())
    if target is not None and target.strip().lower() != trail[-1]:
        raise ConfigError(
            "alias cycle: " + " → ".join([*trail, target.strip().lower()]),
            remedy="make one alias in agents.defaults.models point at a provider/model",
        )
    return text


def _alias_cycles(aliases: Mapping[str, str], problems: Problems) -> None:
    reported: set[frozenset[str]] = set()
    for alias in aliases:
        try:
            follow_aliases(aliases, alias)
        except ConfigError as exc:
            members = frozenset(exc.message.removeprefix("alias cycle: ").split(" → "))
            if members not in reported:
                reported.add(members)
                problems.note(f"agents.defaults.models: {exc.message} (make one of them a provider/model)")


def _aliases(value: Any, problems: Problems) -> dict[str, str]:
    out: dict[str, str] = {}
    for ref, entry in problems.obj(value, "agents.defaults.models").items():
        entry_map = problems.obj(entry, f'agents.defaults.models["{ref}"]')
        alias = entry_map.get("alias")
        if alias is None:
            continue
        if not isinstance(alias, str) or not alias.strip():
            problems.add(f'agents.defaults.models["{ref}"].alias', "expected a non-empty string", alias)
            continue
        out[alias.strip().lower()] = ref
    return out


def _model_routing(
    value: Any, providers: dict[str, ProviderConfig], problems: Problems
) -> dict[str, ProviderConfig]:
    """Apply ``agents.defaults.models["provider/model"].params.provider`` (OpenRouter routing)."""
    for ref, entry in problems.obj(value, "agents.defaults.models").items():
        params = problems.obj(
            problems.obj(entry, f'agents.defaults.models["{ref}"]').get("params", {}), "params"
        )
        path = f'agents.defaults.models["{ref}"].params.provider'
        routing = read_routing(params.get("provider"), path, problems)
        pid, _, mid = str(ref).partition("/")
        provider = providers.get(pid.lower())
        if not routing or provider is None or not mid:
            continue
        declared = provider.model(mid) or ModelDef(id=mid)
        models = [m for m in provider.models if m.id != mid]
        providers[provider.id] = replace(provider, models=(*models, replace(declared, routing=routing)))
    return providers


def describe_auto(ref: ModelRef) -> str:
    """Human text for a ref whose model is chosen at call time."""
    return f"{ref.provider} (model chosen by need)" if ref.model == AUTO else str(ref)


def dumps(value: Any) -> str:
    """JSON text of a config value for messages."""
    return json.dumps(value, ensure_ascii=False)
