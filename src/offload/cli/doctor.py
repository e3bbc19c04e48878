"""``offload doctor``: the troubleshooting checklist as a command, each failure with its fix.

It checks the config, then every provider of the default chain in order — LM Studio in depth
(server, auth, models, loaded state, a tiny round trip), the embedded engine (installed, model
present, a tiny round trip), OpenAI-compatible and hosted providers (reachable / key present)
— and says which path calls will take and why. A provider that fails while a later one in
the chain works is a warning; the command fails (exit 1) only when no candidate can answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import click

from offload.cli._app import (
    cli,
    current_config,
    json_option,
    lmstudio_address,
    print_json,
    run,
    server_options,
)

if TYPE_CHECKING:
    from offload.client import AsyncLMStudio
    from offload.config import Config, ProviderConfig
    from offload.providers.base import Provider
    from offload.types import ModelInfo


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report."""

    name: str
    status: str  # "ok" | "warn" | "fail" | "skip"
    detail: str
    fix: str | None = None


MARK = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-"}
PING = "Reply with exactly: OK"


async def lmstudio_checks(lms: AsyncLMStudio, token_set: bool) -> list[Check]:
    """Reachability, auth, downloaded and loaded models, and a tiny round trip."""
    from offload.errors import AuthError, OffloadError, Unreachable

    url = lms.base_url
    try:
        models = await lms.provider.models()
    except Unreachable as exc:
        return [Check("lmstudio", "fail", f"nothing answers at {url}", exc.remedy)]
    except AuthError as exc:
        detail = "the token was rejected" if token_set else "the server requires a token and none is set"
        return [
            Check("lmstudio", "ok", f"LM Studio answers at {url}"),
            Check("auth", "fail", detail, exc.remedy),
        ]
    except OffloadError as exc:
        return [Check("lmstudio", "fail", exc.message, exc.remedy)]
    auth = "token accepted" if token_set else "no token needed (authentication is off)"
    checks = [Check("lmstudio", "ok", f"LM Studio answers at {url}"), Check("auth", "ok", auth)]
    checks += model_checks(models)
    if all(c.status != "fail" for c in checks):
        checks.append(await round_trip(lms))
    return checks


def model_checks(models: list[ModelInfo]) -> list[Check]:
    """Whether an LLM is downloaded, and whether one is loaded."""
    from offload.routing.selection import size_of

    llms = [m for m in models if m.is_llm]
    if not llms:
        fix = "download one in LM Studio (Discover tab) or with `lms get qwen/qwen3-4b-2507`"
        return [Check("models", "fail", "no LLM downloaded", fix)]
    checks = [Check("models", "ok", f"{len(llms)} LLM(s) downloaded")]
    loaded = [i.id for m in llms for i in m.loaded_instances]
    if loaded:
        checks.append(Check("loaded", "ok", "loaded: " + ", ".join(loaded)))
    else:
        smallest = min(llms, key=size_of).key
        detail = "no LLM loaded: the first request loads one (JIT) if 'Just in Time Model Loading' is on"
        checks.append(
            Check("loaded", "warn", detail, f"load one now to avoid the wait: offload load {smallest}")
        )
    return checks


async def round_trip(lms: AsyncLMStudio) -> Check:
    """Send a tiny prompt to LM Studio and report the answer time."""
    from offload.errors import OffloadError

    try:
        result = await lms.chat(PING, max_output_tokens=16, temperature=0, store=False)
    except OffloadError as exc:
        return Check("round trip", "fail", exc.message, exc.remedy)
    return Check("round trip", "ok", answered(result.model, result))


def answered(model: str, result: object) -> str:
    """``model answered 'OK' in 0.42s, 85 tok/s``."""
    from offload.types import ChatResult

    assert isinstance(result, ChatResult)
    secs = result.timings.total_seconds or 0.0
    speed = f", {result.timings.tokens_per_second:.0f} tok/s" if result.timings.tokens_per_second else ""
    text = result.content.strip().replace("\n", " ")[:40]
    return f"{model} answered {text!r} in {secs:.2f}s{speed}"


async def provider_check(cfg: ProviderConfig, config: Config) -> Check:
    """Can this non-LM Studio provider answer? (embedded: a real round trip; HTTP: list models)."""
    from offload.errors import OffloadError
    from offload.providers.registry import PoolOptions, build_provider
    from offload.types import ChatRequest

    if not cfg.supported:
        return Check(cfg.id, "skip", f"api {cfg.api!r} is not supported by offload; skipped")
    hosted = not cfg.local
    if hosted and not cfg.api_key:
        fix = f"export {cfg.id.upper()}_API_KEY=… or set models.providers.{cfg.id}.apiKey"
        return Check(cfg.id, "warn", "no API key: calls to it will fail over", fix)
    provider: Provider = build_provider(cfg, PoolOptions.for_config(config))
    try:
        if cfg.api != "embedded":
            await provider.models()
            return Check(cfg.id, "ok", f"{'hosted' if hosted else 'local'} API answers at {cfg.base_url}")
        models = await provider.models()
        key = models[0].key if models else None  # None: the default model, or "how to install it"
        result = await provider.chat(
            ChatRequest.from_prompt(PING, model=key, max_output_tokens=8, temperature=0)
        )
        return Check(cfg.id, "ok", "in-process llama.cpp: " + answered(key or result.model, result))
    except OffloadError as exc:
        return Check(cfg.id, "fail", exc.message, exc.remedy)
    finally:
        await provider.aclose()


async def chain_checks(base_url: str | None, api_token: str | None, timeout: float | None) -> list[Check]:
    """Config, each provider of the default chain in order, and the active path."""
    from offload.client import AsyncLMStudio
    from offload.routing.retry import NO_RETRY

    config = current_config()
    chain = config.chain()
    source = str(config.source) if config.source else "no config file (built-in defaults)"
    checks = [Check("config", "ok", f"{source}; chain: " + " → ".join(str(r) for r in chain))]
    checks += [Check("config", "warn", w) for w in config.warnings()]
    local_only = config.settings.local_only
    if local_only:
        checks.append(Check("local-only", "ok", "on: hosted providers are not contacted, not even by doctor"))
    active: str | None = None
    seen: set[str] = set()
    for ref in chain:
        cfg = config.providers.get(ref.provider)
        if cfg is None or cfg.id in seen:
            continue
        seen.add(cfg.id)
        if local_only and not cfg.local:
            checks.append(Check(cfg.id, "skip", "hosted; not contacted (local-only)"))
            continue
        if cfg.api == "lmstudio":
            url, token = lmstudio_address(base_url, api_token)
            async with AsyncLMStudio(url, token, retry=NO_RETRY, timeout=timeout) as lms:
                part = await lmstudio_checks(lms, token is not None)
        else:
            part = [await provider_check(cfg, config)]
        checks += part
        if active is None and all(c.status != "fail" for c in part):
            active = cfg.id
    return finish(checks, active, config)


def finish(checks: list[Check], active: str | None, config: Config) -> list[Check]:
    """Soften failures that a later candidate covers, and add the active-path line."""
    if active is None:
        fix = "fix the failures above"
        if config.settings.local_only:
            fix += "; local-only is on, so only local providers count"
        return [*checks, Check("path", "fail", "no provider in the chain can answer", fix)]
    covered = [Check(c.name, "warn", c.detail, c.fix) if c.status == "fail" else c for c in checks]
    skipped = [c.name for c in checks if c.status == "fail"]
    why = f" ({', '.join(dict.fromkeys(skipped))} unavailable)" if skipped else ""
    where = "on this machine" if config.providers[active].local else "on a hosted API"
    return [*covered, Check("path", "ok", f"calls go to {active}{why}, {where}")]


@cli.command("doctor")
@server_options
@json_option
def doctor_cmd(base_url: str | None, api_token: str | None, timeout: float | None, as_json: bool) -> None:
    """Check the setup step by step, say which path calls take, and how to fix what fails."""
    checks = run(chain_checks(base_url, api_token, timeout))
    if as_json:
        print_json({"checks": [asdict(c) for c in checks]})
    else:
        for c in checks:
            click.echo(f"{MARK[c.status]} {c.name}: {c.detail}")
            if c.fix and c.status in ("fail", "warn"):
                click.echo(f"    fix: {c.fix}")
    if any(c.status == "fail" for c in checks):
        raise SystemExit(1)
