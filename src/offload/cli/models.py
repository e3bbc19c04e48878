"""``offload models``, ``offload load`` and ``offload unload``: LM Studio model management."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from offload.cli._app import (
    cli,
    current_config,
    json_option,
    lmstudio_address,
    note,
    print_json,
    run,
    server_options,
    stderr_is_tty,
    table,
)

if TYPE_CHECKING:
    from offload.client import AsyncLMStudio
    from offload.types import ModelInfo

T = TypeVar("T")


def client(base_url: str | None, api_token: str | None, timeout: float | None = None) -> AsyncLMStudio:
    """An ``AsyncLMStudio`` for the command's server options (flag > config > env > default)."""
    from offload.client import AsyncLMStudio

    return AsyncLMStudio(*lmstudio_address(base_url, api_token), timeout=timeout)


def human_size(n: int | None) -> str:
    """Bytes as a short human string (``771.9 MB``)."""
    if not n:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1000
    return "-"


def capabilities(m: ModelInfo) -> str:
    """The capability column: vision, tools, reasoning options."""
    caps = [c for c, on in (("vision", m.vision), ("tools", m.tool_use)) if on]
    if m.reasoning_options:
        caps.append("reasoning:" + "/".join(m.reasoning_options))
    return ",".join(caps) or "-"


def loaded_column(m: ModelInfo) -> str:
    """The loaded-instances column: ``id (ctx 8192, 4 slots)``."""
    parts = []
    for i in m.loaded_instances:
        extra = [
            f"ctx {i.context_length}" if i.context_length else "",
            f"{i.parallel} slots" if i.parallel else "",
        ]
        detail = ", ".join(e for e in extra if e)
        parts.append(f"{i.id} ({detail})" if detail else i.id)
    return "; ".join(parts) or "-"


def models_table(models: list[ModelInfo]) -> str:
    """The human listing of ``offload models``."""
    rows = [
        [
            m.key,
            m.type,
            m.params_string or "-",
            m.quantization or "-",
            human_size(m.size_bytes),
            str(m.max_context_length or "-"),
            capabilities(m),
            loaded_column(m),
        ]
        for m in models
    ]
    headers = ["KEY", "TYPE", "PARAMS", "QUANT", "SIZE", "MAX CTX", "CAPABILITIES", "LOADED"]
    return table(headers, rows)


@cli.command("models")
@click.option(
    "--provider",
    default="lmstudio",
    show_default=True,
    metavar="ID",
    help="Which configured provider to list (lmstudio, embedded, or one from your config).",
)
@server_options
@json_option
def models_cmd(
    provider: str, base_url: str | None, api_token: str | None, timeout: float | None, as_json: bool
) -> None:
    """Check the server and list downloaded models and their loaded instances."""

    async def go() -> list[ModelInfo]:
        if provider == "lmstudio":
            async with client(base_url, api_token, timeout) as lms:
                return await lms.models()
        return await list_provider(provider)

    models = run(go())
    if as_json:
        print_json({"models": [m.to_dict() for m in models]})
    elif not models:
        where = "LM Studio's Discover tab or `lms get <model>`" if provider == "lmstudio" else "the provider"
        note(f"no models found: add one with {where}")
    else:
        click.echo(models_table(models))


async def list_provider(provider_id: str) -> list[ModelInfo]:
    """The models of any configured provider (embedded, OpenAI-compatible servers, hosted APIs)."""
    from offload.providers.registry import PoolOptions, build_provider

    config = current_config()
    cfg = config.providers.get(provider_id)
    if cfg is None:
        raise click.UsageError(
            f"no provider {provider_id!r}; configured: {', '.join(sorted(config.providers))}"
        )
    built = build_provider(cfg, PoolOptions.for_config(config))
    try:
        return await built.models()
    finally:
        await built.aclose()


async def with_progress(label: str, work: Awaitable[T], active: Callable[[], bool] = lambda: True) -> T:
    """Await ``work`` while showing elapsed time on stderr — once ``active()`` says something
    is happening (a load started), so nothing is shown for a model that is already loaded."""
    import asyncio

    task = asyncio.ensure_future(work)
    started = time.monotonic()
    tty = stderr_is_tty()
    shown = False
    while not task.done():
        await asyncio.wait({task}, timeout=0.2)
        if not shown and active():
            shown = True
            if not tty:
                note(f"{label} …")
        if tty and shown:
            click.echo(f"\r{label} … {time.monotonic() - started:5.1f}s", err=True, nl=False)
    if tty and shown:
        click.echo("\r" + " " * (len(label) + 14) + "\r", err=True, nl=False)
    return task.result()


@cli.command("load")
@click.argument("key")
@click.option("--context-length", type=click.IntRange(min=1), help="Context window to load with (tokens).")
@click.option(
    "--flash-attention/--no-flash-attention", default=None, help="Flash attention (llama.cpp engine)."
)
@click.option(
    "--eval-batch-size", type=click.IntRange(min=1), help="Evaluation batch size (llama.cpp engine)."
)
@click.option("--new-instance", is_flag=True, help="Load another instance even if KEY is already loaded.")
@click.option(
    "--ttl",
    type=click.IntRange(min=1),
    metavar="SECONDS",
    help="Unload after this many idle seconds (LM Studio's idle TTL). Default: offload.keepWarm, else none.",
)
@server_options
@json_option
def load_cmd(
    key: str,
    context_length: int | None,
    flash_attention: bool | None,
    eval_batch_size: int | None,
    new_instance: bool,
    ttl: int | None,
    base_url: str | None,
    api_token: str | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Load a model and wait until it is ready; prints the instance id and load time.

    If the server runs out of memory, models offload loaded earlier are unloaded (or a smaller
    model of the same family is loaded instead) and the load is tried once more; it says so.
    """
    from offload import loading

    if ttl is None and not (context_length or flash_attention is not None or eval_batch_size):
        ttl = current_config().settings.keep_warm

    async def go() -> Any:
        started: list[loading.LoadEvent] = []
        stop = loading.subscribe(lambda e: started.append(e) if e.phase == "start" else None)
        try:
            async with client(base_url, api_token, timeout) as lms:
                work = lms.load(
                    key,
                    context_length=context_length,
                    flash_attention=flash_attention,
                    eval_batch_size=eval_batch_size,
                    new_instance=new_instance,
                    ttl=ttl,
                )
                return await with_progress(f"loading model {key}", work, lambda: bool(started))
        finally:
            stop()

    result = run(go())
    if as_json:
        print_json(
            {
                "instance_id": result.instance_id,
                "load_time_seconds": result.load_time_seconds,
                "already_loaded": result.already_loaded,
                "type": result.type,
                "ttl": result.config.get("ttl") if not result.already_loaded else None,
                "note": result.note,
            }
        )
    elif result.already_loaded:
        click.echo(f"{key} is already loaded as {result.instance_id} (use --new-instance for another)")
    else:
        took = f" in {result.load_time_seconds:.2f}s" if result.load_time_seconds is not None else ""
        idle = f", unloaded after {ttl}s idle" if ttl else ""
        click.echo(f"loaded {result.instance_id}{took}{idle}")
    if result.note:
        note(result.note)


@cli.command("unload")
@click.argument("key", required=False)
@click.option("--instance", "instance_id", metavar="ID", help="Unload one instance by id (e.g. key:2).")
@click.option("--all", "unload_all", is_flag=True, help="Unload every loaded instance of every model.")
@server_options
@json_option
def unload_cmd(
    key: str | None,
    instance_id: str | None,
    unload_all: bool,
    base_url: str | None,
    api_token: str | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Unload every instance of KEY (or one --instance, or --all), then verify none remains."""
    if sum((key is not None, instance_id is not None, unload_all)) != 1:
        raise click.UsageError("name exactly one of: KEY, --instance ID, --all")

    async def go() -> list[str]:
        async with client(base_url, api_token, timeout) as lms:
            return await lms.unload(key, instance_id=instance_id, all=unload_all)

    done = run(go())
    if as_json:
        print_json({"unloaded": done})
    elif done:
        click.echo("unloaded " + ", ".join(done))
    else:
        click.echo("nothing was loaded")
