"""The typed pieces of the config and the validators that build them from parsed JSON5.

Every check records ``path: expected …, got …`` in a ``Problems`` list instead of stopping at
the first one, so ``offload config check`` shows everything wrong with a file at once. The
providers' entries are read by ``offload.config_providers``; offload's own section is read here.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offload.errors import ConfigError, closest
from offload.tasks.taskdef import GATES, ON_FAIL

SUPPORTED_APIS = ("lmstudio", "embedded", "openai-completions", "openai-responses", "anthropic-messages")
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
ANY_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Cost:
    """USD per million tokens."""

    input: float = 0.0
    output: float = 0.0
    cache_read: float = 0.0
    cache_write: float = 0.0

    def dollars(self, input_tokens: int, output_tokens: int) -> float:
        """What ``input_tokens`` in and ``output_tokens`` out cost at these prices."""
        return (input_tokens * self.input + output_tokens * self.output) / 1_000_000

    @property
    def free(self) -> bool:
        """True when every price is zero."""
        return not (self.input or self.output or self.cache_read or self.cache_write)


@dataclass(frozen=True, slots=True)
class ModelDef:
    """A model declared under a provider."""

    id: str
    name: str | None = None
    reasoning: bool = False
    input: tuple[str, ...] = ("text",)
    cost: Cost = field(default_factory=Cost)
    context_window: int | None = None
    max_tokens: int | None = None
    api: str | None = None
    routing: Mapping[str, Any] = field(default_factory=dict)
    """OpenRouter provider preferences (``params.provider``: ``order``, ``only``, …), sent as-is."""


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One provider after merging and secret resolution."""

    id: str
    base_url: str
    api: str
    api_key: str | None = None
    api_key_source: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    models: tuple[ModelDef, ...] = ()
    local: bool = True
    timeout_seconds: float | None = None
    base_urls: tuple[str, ...] = ()

    def model(self, model_id: str) -> ModelDef | None:
        """The declared model with this id, if any."""
        return next((m for m in self.models if m.id == model_id), None)

    @property
    def supported(self) -> bool:
        """True when offload speaks this provider's ``api``."""
        return self.api in SUPPORTED_APIS


@dataclass(frozen=True, slots=True)
class ModelRef:
    """``provider/model``, split on the first slash."""

    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True, slots=True)
class Chain:
    """A primary model and its fallbacks (refs or aliases, unresolved)."""

    primary: str
    fallbacks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TaskSettings:
    """Per-task overrides under ``offload.tasks.<name>``."""

    model: Chain | None = None
    local_only: bool | None = None
    gate: str | None = None
    on_fail: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OffloadSettings:
    """offload's own settings (the ``offload`` key)."""

    local_only: bool = False
    embedded: bool = True
    models_dir: str | None = None
    embedded_threads: int | None = None
    savings_baseline: str | None = None
    store_text: bool = False
    tasks: Mapping[str, TaskSettings] = field(default_factory=dict)
    gateway: GatewaySettings = field(default_factory=lambda: GatewaySettings())
    keep_warm: int | None = None
    """Idle seconds LM Studio keeps the models offload loads (its idle TTL); ``None``: no TTL."""


class Problems:
    """Collects validation problems with their key paths."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, path: str, expected: str, got: Any) -> None:
        """Record that ``path`` held ``got`` where ``expected`` was wanted.

        The value is quoted unless the key is a secret field or the value looks like a key;
        then only its type is named.
        """
        self.lines.append(f"{path}: {expected}, got {_show(got, path)}")

    def note(self, line: str) -> None:
        """Record a free-form problem line."""
        self.lines.append(line)

    def raise_if_any(self, source: Path | None) -> None:
        """Raise one ``ConfigError`` listing every problem."""
        if not self.lines:
            return
        where = f" in {source}" if source else ""
        raise ConfigError(
            f"invalid config{where}:\n  " + "\n  ".join(self.lines),
            remedy="fix the keys above; `offload config check` re-validates",
        )

    def obj(self, value: Any, path: str) -> Mapping[str, Any]:
        """``value`` when it is an object, else ``{}`` and a problem."""
        if isinstance(value, Mapping):
            return value
        self.add(path, "expected an object", value)
        return {}

    def string(self, value: Any, path: str, *, required: bool = False) -> str | None:
        """A non-empty string or ``None``."""
        if value is None and not required:
            return None
        if isinstance(value, str) and value.strip():
            return value
        self.add(path, "expected a non-empty string", value)
        return None

    def flag(self, value: Any, path: str) -> bool | None:
        """A boolean or ``None``."""
        if value is None or isinstance(value, bool):
            return value
        self.add(path, "expected true or false", value)
        return None

    def positive_int(self, value: Any, path: str) -> int | None:
        """A positive integer or ``None``."""
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        self.add(path, "expected a positive integer", value)
        return None

    def number(self, value: Any, path: str, *, positive: bool = False) -> float | None:
        """A non-negative (or positive) number or ``None``."""
        if value is None:
            return None
        ok = (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and (value > 0 if positive else value >= 0)
        )
        if ok:
            return float(value)
        self.add(path, f"expected a {'positive' if positive else 'non-negative'} number", value)
        return None

    def strings(self, value: Any, path: str) -> tuple[str, ...] | None:
        """A list of strings or ``None``."""
        if value is None:
            return None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        self.add(path, "expected a list of strings", value)
        return None

    def choice(self, value: Any, path: str, allowed: tuple[str, ...]) -> str | None:
        """One of ``allowed`` or ``None``."""
        if value is None:
            return None
        if isinstance(value, str) and value in allowed:
            return value
        self.add(path, "expected one of " + ", ".join(f'"{a}"' for a in allowed), value)
        return None

    def chain(self, value: Any, path: str) -> Chain | None:
        """A model chain: a plain ref string or ``{primary, fallbacks}``."""
        if isinstance(value, str) and value.strip():
            return Chain(value)
        if not isinstance(value, Mapping):
            self.add(path, 'expected "provider/model" or {primary, fallbacks}', value)
            return None
        primary = self.string(value.get("primary"), f"{path}.primary")
        fallbacks = self.strings(value.get("fallbacks"), f"{path}.fallbacks") or ()
        if primary is None:
            if fallbacks:
                return Chain(fallbacks[0], fallbacks[1:])
            return None
        return Chain(primary, fallbacks)


TYPE_NAMES = {bool: "true/false", str: "a string", int: "a number", float: "a number", list: "a list"}


def _show(value: Any, path: str = "") -> str:
    from offload import redact

    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    last = path.rsplit(".", 1)[-1]
    if redact.SECRET_NAME.search(last) or ".headers." in path or redact.looks_secret(text):
        kind = "an object" if isinstance(value, Mapping) else TYPE_NAMES.get(type(value), "null")
        return f"{kind} (value not shown: it may be a secret)"
    return text[:80]


# --- offload's own key ----------------------------------------------------------------------

OFFLOAD_SECTIONS: dict[str, tuple[str, ...]] = {
    "offload": ("localOnly", "embedded", "savings", "ledger", "tasks", "gateway", "keepWarm"),
    "offload.embedded": ("enabled", "modelsDir", "threads"),
    "offload.savings": ("baseline",),
    "offload.ledger": ("storeText",),
}
"""offload's namespace is strict: each object's allowed keys. A new setting is one entry here."""
TASK_KEYS = ("model", "localOnly", "gate", "onFail")


def strict_keys(o: Mapping[str, Any], path: str, p: Problems) -> None:
    """Record every key of ``o`` that ``OFFLOAD_SECTIONS[path]`` does not allow, with a hint."""
    allowed = OFFLOAD_SECTIONS.get(path)
    if allowed is None:
        return
    for key in o:
        if key in allowed:
            continue
        hint = closest(str(key), allowed, 1)
        suggestion = f" (did you mean {hint[0]}?)" if hint else f" (known: {', '.join(allowed)})"
        p.note(f"{path}.{key}: unknown setting{suggestion}")


def read_offload(o: Mapping[str, Any], p: Problems) -> OffloadSettings:
    """Validate the ``offload`` object (unknown keys are errors: it is our namespace)."""
    strict_keys(o, "offload", p)
    sections: dict[str, Mapping[str, Any]] = {}
    for path in OFFLOAD_SECTIONS:
        if path.count(".") == 1:
            sections[path] = section = p.obj(o.get(path.split(".")[1], {}), path)
            strict_keys(section, path, p)
    embedded, savings, ledger = (sections[f"offload.{k}"] for k in ("embedded", "savings", "ledger"))
    tasks = p.obj(o.get("tasks", {}), "offload.tasks")
    enabled = p.flag(embedded.get("enabled"), "offload.embedded.enabled")
    local_only = bool(p.flag(o.get("localOnly"), "offload.localOnly"))
    task_settings = {name: _task(t, f"offload.tasks.{name}", p) for name, t in tasks.items()}
    for name, task in task_settings.items():
        if local_only and task.local_only is False:
            p.note(
                f"offload.tasks.{name}.localOnly: false cannot lift the global offload.localOnly: true "
                "(the global setting is a floor; remove the task's localOnly or the global one)"
            )
    return OffloadSettings(
        local_only=local_only,
        embedded=True if enabled is None else enabled,
        models_dir=p.string(embedded.get("modelsDir"), "offload.embedded.modelsDir"),
        embedded_threads=p.positive_int(embedded.get("threads"), "offload.embedded.threads"),
        savings_baseline=p.string(savings.get("baseline"), "offload.savings.baseline"),
        store_text=bool(p.flag(ledger.get("storeText"), "offload.ledger.storeText")),
        tasks=task_settings,
        gateway=read_gateway(o.get("gateway", {}), p),
        keep_warm=p.positive_int(o.get("keepWarm"), "offload.keepWarm"),
    )


def _task(raw: Any, path: str, p: Problems) -> TaskSettings:
    t = p.obj(raw, path)
    return TaskSettings(
        model=p.chain(t["model"], f"{path}.model") if "model" in t else None,
        local_only=p.flag(t.get("localOnly"), f"{path}.localOnly"),
        gate=p.choice(t.get("gate"), f"{path}.gate", GATES),
        on_fail=p.choice(t.get("onFail"), f"{path}.onFail", ON_FAIL),
        options={k: v for k, v in t.items() if k not in TASK_KEYS},
    )


def expand_user(path: str | None) -> str | None:
    """``~`` and ``$VAR`` expansion for paths in the config."""
    return os.path.expandvars(os.path.expanduser(path)) if path else None


# --- offload.gateway (offload serve) --------------------------------------------------------

PASSTHROUGH = "passthrough"
"""Chain entry meaning: the model the client asked for, at the hosted provider that owns it."""
SCENARIOS = ("background", "think", "longContext", "tools", "default")
GATEWAY_KEYS = ("models", "scenarios", "longContextThreshold", "localMaxTokens", "bodyLimitMb")


def _default_scenarios() -> dict[str, Chain]:
    return {
        "background": Chain("lmstudio/auto", (PASSTHROUGH,)),
        "think": Chain(PASSTHROUGH),
        "longContext": Chain(PASSTHROUGH),
        "tools": Chain(PASSTHROUGH),
        "default": Chain(PASSTHROUGH),
    }


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """How ``offload serve`` routes requests (the ``offload.gateway`` key).

    ``models`` maps a client's model name (lower-cased) to a chain and wins over scenarios;
    ``scenarios`` maps each of ``SCENARIOS`` to a chain. Chain entries are refs, aliases or
    ``"passthrough"``.
    """

    models: Mapping[str, Chain] = field(default_factory=dict)
    scenarios: Mapping[str, Chain] = field(default_factory=_default_scenarios)
    long_context_threshold: int = 60_000
    local_max_tokens: int = 4096
    body_limit_mb: int = 32


def read_gateway(raw: Any, p: Problems) -> GatewaySettings:
    """Validate ``offload.gateway`` (unknown keys and scenario names are errors)."""
    g = p.obj(raw, "offload.gateway")
    for key in g:
        if key not in GATEWAY_KEYS:
            hint = closest(key, GATEWAY_KEYS, 1)
            p.note(
                f"offload.gateway.{key}: unknown setting" + (f" (did you mean {hint[0]}?)" if hint else "")
            )
    models: dict[str, Chain] = {}
    for name, value in p.obj(g.get("models", {}), "offload.gateway.models").items():
        chain = p.chain(value, f'offload.gateway.models["{name}"]')
        if chain is not None:
            models[name.strip().lower()] = chain
    scenarios = _default_scenarios()
    for name, value in p.obj(g.get("scenarios", {}), "offload.gateway.scenarios").items():
        if name not in SCENARIOS:
            hint = closest(name, SCENARIOS, 1)
            p.note(
                f"offload.gateway.scenarios.{name}: unknown scenario (known: {', '.join(SCENARIOS)})"
                + (f"; did you mean {hint[0]}?" if hint else "")
            )
            continue
        chain = p.chain(value, f"offload.gateway.scenarios.{name}")
        if chain is not None:
            scenarios[name] = chain
    defaults = GatewaySettings()
    return GatewaySettings(
        models=models,
        scenarios=scenarios,
        long_context_threshold=p.positive_int(
            g.get("longContextThreshold"), "offload.gateway.longContextThreshold"
        )
        or defaults.long_context_threshold,
        local_max_tokens=p.positive_int(g.get("localMaxTokens"), "offload.gateway.localMaxTokens")
        or defaults.local_max_tokens,
        body_limit_mb=p.positive_int(g.get("bodyLimitMb"), "offload.gateway.bodyLimitMb")
        or defaults.body_limit_mb,
    )
