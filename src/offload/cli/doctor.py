"""``offload doctor``: the troubleshooting checklist as a command, each failure with its fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import click

from offload.cli._app import cli, json_option, lmstudio_address, print_json, run, server_options

if TYPE_CHECKING:
    from offload.client import AsyncLMStudio
    from offload.types import ModelInfo


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report."""

    name: str
    status: str  # "ok" | "warn" | "fail" | "skip"
    detail: str
    fix: str | None = None


MARK = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-"}


async def lmstudio_checks(lms: AsyncLMStudio, token_set: bool) -> list[Check]:
    """Reachability, auth, downloaded and loaded models, and a tiny round trip."""
    from offload.errors import AuthError, OffloadError, Unreachable

    url = lms.base_url
    try:
        models = await lms.provider.models()
    except Unreachable as exc:
        return [Check("server", "fail", f"nothing answers at {url}", exc.remedy)]
    except AuthError as exc:
        detail = "the token was rejected" if token_set else "the server requires a token and none is set"
        return [
            Check("server", "ok", f"LM Studio answers at {url}"),
            Check("auth", "fail", detail, exc.remedy),
        ]
    except OffloadError as exc:
        return [Check("server", "fail", exc.message, exc.remedy)]
    checks = [Check("server", "ok", f"LM Studio answers at {url}")]
    auth = "token accepted" if token_set else "no token needed (authentication is off)"
    checks.append(Check("auth", "ok", auth))
    checks += model_checks(models)
    if any(c.status == "fail" for c in checks):
        return checks
    checks.append(await round_trip(lms))
    return checks


def model_checks(models: list[ModelInfo]) -> list[Check]:
    """Whether an LLM is downloaded, and whether one is loaded."""
    llms = [m for m in models if m.is_llm]
    if not llms:
        fix = "download one in LM Studio (Discover tab) or with `lms get qwen/qwen3-4b-2507`"
        return [Check("models", "fail", "no LLM downloaded", fix)]
    checks = [Check("models", "ok", f"{len(llms)} LLM(s) downloaded")]
    loaded = [i.id for m in llms for i in m.loaded_instances]
    if loaded:
        checks.append(Check("loaded", "ok", "loaded: " + ", ".join(loaded)))
    else:
        checks.append(
            Check(
                "loaded",
                "warn",
                "no LLM loaded: the first request loads one (JIT) if 'Just in Time Model Loading' is on",
                f"load one now to avoid the wait: offload load {min(llms, key=_size).key}",
            )
        )
    return checks


def _size(m: ModelInfo) -> float:
    from offload.selection import size_of

    return size_of(m)


async def round_trip(lms: AsyncLMStudio) -> Check:
    """Send a tiny prompt and report the answer time."""
    from offload.errors import OffloadError

    try:
        result = await lms.chat("Reply with exactly: OK", max_output_tokens=16, temperature=0, store=False)
    except OffloadError as exc:
        return Check("round trip", "fail", exc.message, exc.remedy)
    secs = result.timings.total_seconds or 0.0
    speed = f", {result.timings.tokens_per_second:.0f} tok/s" if result.timings.tokens_per_second else ""
    answer = result.content.strip().replace("\n", " ")[:40]
    return Check("round trip", "ok", f"{result.model} answered {answer!r} in {secs:.2f}s{speed}")


@cli.command("doctor")
@server_options
@json_option
def doctor_cmd(base_url: str | None, api_token: str | None, timeout: float | None, as_json: bool) -> None:
    """Check the setup step by step and say how to fix what fails."""
    from offload.client import AsyncLMStudio
    from offload.retry import NO_RETRY

    async def go() -> list[Check]:
        url, token = lmstudio_address(base_url, api_token)
        async with AsyncLMStudio(url, token, retry=NO_RETRY, timeout=timeout) as lms:
            return await lmstudio_checks(lms, token is not None)

    checks = run(go())
    if as_json:
        print_json({"checks": [asdict(c) for c in checks]})
    else:
        for c in checks:
            click.echo(f"{MARK[c.status]} {c.name}: {c.detail}")
            if c.fix and c.status in ("fail", "warn"):
                click.echo(f"    fix: {c.fix}")
    if any(c.status == "fail" for c in checks):
        raise SystemExit(1)
