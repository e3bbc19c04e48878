"""Getting the servers ready for a batch: one ``EndpointSet`` per local provider, warmed and measured.

Owns ``prepare_fleet``, ``Fleet`` and ``RunPool``. For every local provider in the task's chain
the run gets an ``EndpointSet`` over that provider's servers (``--base-url`` repeated — applied to
``lmstudio``, or else the chain's first local provider — or the config's ``baseUrls``). Then,
for the chain's first candidate when it is local:

1. pin the model: ``auto`` is resolved once, on the first server that lists its models, with
   the typical item's size; every item then runs on that model;
2. warm every server with a tiny request for that model, which also loads it (a server that
   lacks the model is set aside; one that does not answer is marked down and retried later);
3. read each server's slot count where the server says it: LM Studio's
   ``loaded_instances[].config.parallel`` (native API, or ``/api/v1/models`` behind an
   OpenAI-style provider), llama.cpp's ``/slots`` or ``/props`` (``total_slots``); the
   in-process engine has one. Otherwise ``Probe`` raises concurrency while throughput grows.

``concurrency`` (``--concurrency N``) overrides every server's limit. Later local providers of
the chain (fallbacks) get their slot counts read the same way but are not warmed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from offload.batching.schedule import Endpoint, EndpointSet, Probe
from offload.catalog import AUTO
from offload.errors import ModelNotFound, ProviderError, Unreachable
from offload.providers.base import Provider
from offload.providers.registry import ProviderPool, build_provider
from offload.routing.retry import RetryPolicy, call_with_retry
from offload.routing.router import Candidate, Router
from offload.routing.selection import Need, Prefer, choose
from offload.types import ChatRequest, ModelInfo

HTTP_LOCAL = ("lmstudio", "openai-completions", "openai-responses")
DEFAULT_SLOTS = 4
HOSTED_CONCURRENCY = 4
WARM_PROMPT = "Reply with exactly: ok"
IN_PROCESS = "in-process engine"


@dataclass
class Fleet:
    """The batch's view of its servers."""

    sets: dict[str, EndpointSet] = field(default_factory=dict)
    primary: EndpointSet | None = None
    pinned: dict[str, str] = field(default_factory=dict)
    """Provider id → the model every item uses there."""
    notes: list[str] = field(default_factory=list)
    hosted_concurrency: int = HOSTED_CONCURRENCY
    built: list[Provider] = field(default_factory=list)
    """Providers built for this run (one per extra server); the caller's are never closed here."""

    def slots(self) -> int:
        """Requests the primary provider can run at once now."""
        return self.primary.slots() if self.primary is not None else self.hosted_concurrency

    def endpoints(self) -> list[tuple[str, Endpoint]]:
        """(provider id, server) for every server."""
        return [(pid, ep) for pid, s in self.sets.items() for ep in s.endpoints]

    def pool(self, base: ProviderPool) -> ProviderPool:
        """A pool for the run: the endpoint sets in front of ``base`` (which is left untouched)."""
        return RunPool(base, self.sets)

    async def aclose(self) -> None:
        """Close the providers built for this run."""
        for provider in self.built:
            with contextlib.suppress(Exception):
                await provider.aclose()
        self.built.clear()


class RunPool(ProviderPool):
    """One run's providers in front of the caller's pool: ``get`` looks here first, then there.

    ``put`` and ``aclose`` touch only the run's own entries; the caller's pool is shared with
    other calls and stays as it was.
    """

    def __init__(self, base: ProviderPool, own: Mapping[str, Provider]) -> None:
        super().__init__(base.configs, base.options)
        self._base = base
        self._own: dict[str, Provider] = dict(own)

    def get(self, provider_id: str) -> Provider:
        """The run's provider for ``provider_id``, else the caller's."""
        own = self._own.get(provider_id)
        return own if own is not None else self._base.get(provider_id)

    def put(self, provider_id: str, provider: Provider) -> None:
        """Use ``provider`` for ``provider_id`` in this run only."""
        self._own[provider_id] = provider

    async def aclose(self) -> None:
        """Nothing to close: the endpoint sets' own providers are the ``Fleet``'s to close."""


async def prepare_fleet(
    router: Router,
    chain: Sequence[Candidate],
    *,
    base_urls: Sequence[str] = (),
    concurrency: int | None = None,
    need: Need | None = None,
    prefer: Prefer = "fast",
    on_change: Callable[[], None] | None = None,
) -> Fleet:
    """Wrap, warm and measure the chain's local providers (see the module docstring)."""
    fleet = Fleet(hosted_concurrency=concurrency or HOSTED_CONCURRENCY)
    local = [c for c in chain if c.local and (c.provider.api in HTTP_LOCAL or c.provider.api == "embedded")]
    target = _base_url_target(local)
    if base_urls and target is None:
        fleet.notes.append("--base-url ignored: the task's chain has no local server provider")
    for cand in local:
        pid = cand.provider.id
        if pid in fleet.sets:
            continue
        urls = list(base_urls) if base_urls and pid == target else None
        fleet.sets[pid] = _endpoint_set(fleet, router, cand, urls, on_change)
    first = chain[0] if chain else None
    if first is not None and first.provider.id in fleet.sets:
        fleet.primary = fleet.sets[first.provider.id]
        await _warm(fleet, fleet.primary, first, need or Need(tokens=512), prefer)
    for cand in local:
        eps = fleet.sets[cand.provider.id]
        key = fleet.pinned.get(cand.provider.id)
        await asyncio.gather(
            *(
                _limit(ep, cand, key, probe=eps is fleet.primary)
                for ep in eps.endpoints
                if ep.excluded is None
            )
        )
    if concurrency is not None:
        for _, ep in fleet.endpoints():
            if ep.source != IN_PROCESS:  # the in-process engine runs one generation at a time
                ep.limit, ep.source, ep.probe, ep.standby = concurrency, "--concurrency", None, 0
    return fleet


def _base_url_target(local: Sequence[Candidate]) -> str | None:
    ids = [c.provider.id for c in local if c.provider.api in HTTP_LOCAL]
    if "lmstudio" in ids:
        return "lmstudio"
    return ids[0] if ids else None


def _endpoint_set(
    fleet: Fleet,
    router: Router,
    cand: Candidate,
    urls: list[str] | None,
    on_change: Callable[[], None] | None,
) -> EndpointSet:
    cfg = cand.provider
    if cfg.api == "embedded":
        engine = router.pool.get(cfg.id)
        return EndpointSet(
            cfg.id, [Endpoint("in-process", engine, limit=1, source=IN_PROCESS)], on_change=on_change
        )
    override = router.pool.options.overrides.get(cfg.id)
    chosen = list(
        dict.fromkeys(urls or ([override] if override else None) or cfg.base_urls or [cfg.base_url])
    )
    if len(chosen) == 1 and not urls:
        provider = router.pool.get(cfg.id)  # the pool's own provider (it may be a test double)
        return EndpointSet(
            cfg.id,
            [Endpoint(provider.address, provider, DEFAULT_SLOTS)],
            local=cfg.local,
            on_change=on_change,
        )
    options = replace(router.pool.options, overrides={})
    if urls and cfg.api.startswith("openai-"):
        chosen = [_with_v1(u) for u in chosen]
    endpoints = []
    for url in chosen:
        provider = build_provider(replace(cfg, base_url=url), options)
        fleet.built.append(provider)
        endpoints.append(Endpoint(provider.address, provider, DEFAULT_SLOTS))
    return EndpointSet(cfg.id, endpoints, local=cfg.local, on_change=on_change)


def _with_v1(url: str) -> str:
    """``http://host:8080`` → ``http://host:8080/v1`` (OpenAI-style base URLs carry the version)."""
    from urllib.parse import urlsplit

    clean = url.rstrip("/")
    return clean + "/v1" if urlsplit(clean).path in ("", "/") else clean


# --- warm-up and model pinning -------------------------------------------------------------------


async def _warm(fleet: Fleet, eps: EndpointSet, cand: Candidate, need: Need, prefer: Prefer) -> None:
    pid = cand.provider.id
    key = cand.ref.model
    context: int | None = None
    choice_model: ModelInfo | None = None
    if key == AUTO:
        for ep in eps.endpoints:
            try:
                choice = choose(await ep.provider.models(), need, prefer)
            except ModelNotFound as exc:
                fleet.notes.append(f"{ep.url}: {exc.message}")
                continue
            except ProviderError as exc:
                eps.mark_down(ep, exc)
                continue
            key, context, choice_model = choice.model.key, choice.context_length, choice.model
            break
        else:
            fleet.notes.append(f"{pid}: no server could choose a model; items follow the chain's fallbacks")
            return
    fleet.pinned[pid] = key
    request = ChatRequest.from_prompt(
        WARM_PROMPT, max_output_tokens=8, temperature=0.0, context_length=context, store=False
    )
    results = await asyncio.gather(*(_warm_one(eps, ep, request.with_model(key)) for ep in eps.endpoints))
    for ep, problem in zip(eps.endpoints, results, strict=True):
        if problem is not None:
            fleet.notes.append(f"{ep.url}: {problem}")
    if choice_model is not None:
        eps.pinned = [await _loaded_view(eps, key, choice_model)]


async def _warm_one(eps: EndpointSet, ep: Endpoint, request: ChatRequest) -> str | None:
    try:
        await call_with_retry(
            lambda: ep.provider.chat(request),
            RetryPolicy(attempts=3, budget=120.0),
            another=True,  # a server that refuses connections is marked down, not waited on
        )
    except ModelNotFound as exc:
        ep.excluded = f"lacks model {request.model}"
        return f"set aside: {exc.message}"
    except Unreachable as exc:
        eps.mark_down(ep, exc)
        return f"not answering ({exc.short()}); retried later"
    except ProviderError as exc:
        return f"warm-up failed ({exc.short()})"
    return None


async def _loaded_view(eps: EndpointSet, key: str, fallback: ModelInfo) -> ModelInfo:
    """The pinned model as a server lists it after warm-up (loaded, with its loaded context)."""
    for ep in eps.endpoints:
        if ep.excluded is not None:
            continue
        with contextlib.suppress(ProviderError):
            for model in await ep.provider.models():
                if model.key == key:
                    return model
    return fallback


# --- slot counts ---------------------------------------------------------------------------------


async def _limit(ep: Endpoint, cand: Candidate, key: str | None, *, probe: bool) -> None:
    if cand.provider.api == "embedded":
        return
    found = await _slots(ep, cand, key)
    if found is not None:
        (ep.limit, ep.source) = found
        ep.standby = max(1, ep.limit // 2)
    elif probe:
        ep.probe = Probe()
        ep.limit, ep.source = ep.probe.level, "probing"
    else:
        ep.limit, ep.source = DEFAULT_SLOTS, "default"


async def _slots(ep: Endpoint, cand: Candidate, key: str | None) -> tuple[int, str] | None:
    """The server's own slot count and where it came from, when it says."""
    if cand.provider.api == "lmstudio":
        with contextlib.suppress(ProviderError):
            count = _parallel(await ep.provider.models(), key)
            return (count, "LM Studio parallel") if count else None
        return None
    import httpx

    root = ep.url.rstrip("/")
    root = root[:-3] if root.endswith("/v1") else root
    headers = dict(cand.provider.headers)
    if cand.provider.api_key:
        headers["Authorization"] = f"Bearer {cand.provider.api_key}"
    async with httpx.AsyncClient(base_url=root, headers=headers, timeout=5.0) as client:
        slots = await _get_json(client, "/slots")
        if isinstance(slots, list) and slots:
            return len(slots), "llama.cpp /slots"
        props = await _get_json(client, "/props")
        total = props.get("total_slots") if isinstance(props, dict) else None
        if isinstance(total, int) and total > 0:
            return total, "llama.cpp /props"
        native = await _get_json(client, "/api/v1/models")
        if isinstance(native, dict) and isinstance(native.get("models"), list):
            from offload.protocols import lmstudio as wire

            with contextlib.suppress(Exception):
                count = _parallel(wire.parse_models(native), key)
                if count:
                    return count, "LM Studio parallel"
    return None


async def _get_json(client: Any, path: str) -> Any:
    try:
        response = await client.get(path)
    except Exception:
        return None
    if response.status_code != 200:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _parallel(models: Sequence[ModelInfo], key: str | None) -> int:
    """Slots of the pinned model's loaded instances (or of the busiest loaded LLM without one)."""
    counts = [
        sum(i.parallel or 0 for i in m.loaded_instances)
        for m in models
        if m.is_llm and (key is None or m.key == key or any(i.id == key for i in m.loaded_instances))
    ]
    return max(counts, default=0)
