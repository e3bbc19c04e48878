"""Routing vocabulary and planning: candidates, options, results, and which candidates to call.

``plan`` looks at a call before anything is sent: local-only mode drops hosted candidates,
declared context windows too small for the request are skipped (and a request that fits no
candidate fails at once, naming the sizes), as are unsupported APIs and candidates that cannot
continue a server-side thread. ``Router`` (``offload.routing.router``) then calls what remains.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import Enum

from offload.config import Config, ModelDef, ModelRef, ProviderConfig
from offload.errors import (
    AllCandidatesFailed,
    Attempt,
    ContextOverflow,
    LocalOnlyRefused,
    ModelNotFound,
    OffloadError,
    ProviderError,
    Unreachable,
)
from offload.routing.selection import Need
from offload.tokens import estimate_prompt
from offload.types import ChatRequest, ChatResult, ModelInfo, StreamEvent

THREAD_APIS = ("lmstudio", "openai-responses")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One model in a chain, with its provider's config."""

    ref: ModelRef
    provider: ProviderConfig
    model: ModelDef | None = None

    @property
    def name(self) -> str:
        """``provider/model``."""
        return str(self.ref)

    @property
    def local(self) -> bool:
        """True when the call stays on this machine or network."""
        return self.provider.local


@dataclass(frozen=True, slots=True)
class CallEvent:
    """One model call as the ledger sees it (success or failure)."""

    candidate: Candidate
    model: str
    seconds: float
    result: ChatResult | None = None
    error: ProviderError | None = None
    task: str | None = None
    failover: bool = False
    escalated: bool = False
    request: ChatRequest | None = None

    @property
    def outcome(self) -> str:
        """``ok`` or the error kind."""
        return "ok" if self.error is None else self.error.kind


Observer = Callable[[CallEvent], None]


@dataclass(frozen=True, slots=True)
class Routed:
    """A routed answer: the result, who gave it, and every attempt on the way."""

    result: ChatResult
    candidate: Candidate
    attempts: tuple[Attempt, ...]

    @property
    def failed_over(self) -> bool:
        """True when an earlier candidate failed or was skipped before this one answered."""
        return any(a.outcome != "ok" for a in self.attempts)


@dataclass(frozen=True, slots=True)
class CallOptions:
    """Per-call routing options."""

    model: str | None = None
    task: str | None = None
    local_only: bool | None = None
    fallbacks: bool = True
    escalated: bool = False
    chain: tuple[str, ...] | None = None
    """An explicit chain (refs or aliases) replacing model/task/fallbacks; used by escalation."""


@dataclass
class RoutedStream:
    """An answer as events; ``routed`` is set once the stream has ended successfully."""

    events: AsyncIterator[StreamEvent]
    routed: Routed | None = None

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self.events

    async def aclose(self) -> None:
        """Stop early: close the chain of event generators (its HTTP response with it) now, in
        this task, instead of leaving it to the garbage collector (``async with closing(stream)``
        or ``contextlib.aclosing(stream)`` around a loop that may ``break``)."""
        close = getattr(self.events, "aclose", None)
        if close is not None:
            await close()


def candidates(config: Config, options: CallOptions | None = None) -> list[Candidate]:
    """The chain for a call, resolved against the config."""
    opts = options or CallOptions()
    refs = (
        list(dict.fromkeys(config.resolve(r) for r in opts.chain))
        if opts.chain is not None
        else config.chain(opts.model, opts.task, fallbacks=opts.fallbacks)
    )
    out = []
    for ref in refs:  # resolved refs: their provider is declared (``Config.resolve`` checks)
        provider = config.providers[ref.provider]
        out.append(Candidate(ref, provider, provider.model(ref.model)))
    return out


def local_only(config: Config, options: CallOptions) -> bool:
    """Local-only is a floor: the global setting, a task or a call can turn it on; none turns it off."""
    return bool(config.settings.local_only or config.task(options.task).local_only or options.local_only)


class Skip(Enum):
    """Why a candidate is not called for a request."""

    LOCAL_ONLY = "local-only: hosted"
    UNSUPPORTED = "unsupported api"
    NO_THREAD = "cannot continue a server-side thread (previous_response_id)"
    TOO_SMALL = "context window"


@dataclass(frozen=True, slots=True)
class Plan:
    """The candidates to call, in order, and the ones skipped (with why) before any request."""

    runnable: list[Candidate]
    skipped: list[tuple[Candidate, Skip, str]]

    @property
    def attempts(self) -> list[Attempt]:
        """The skipped candidates as attempts (for the ledger and error messages)."""
        return [Attempt(c.name, "skipped", 0.0, error=text) for c, _, text in self.skipped]

    @property
    def refused(self) -> list[str]:
        """Hosted candidates refused by local-only mode."""
        return [c.name for c, why, _ in self.skipped if why is Skip.LOCAL_ONLY]


def plan(config: Config, request: ChatRequest, options: CallOptions) -> Plan:
    """The candidates worth calling, and the skipped ones (no I/O).

    Raises when nothing is left to call: ``ContextOverflow`` when the request fits no allowed
    candidate, ``LocalOnlyRefused`` when local-only refused them all, else ``AllCandidatesFailed``.
    """
    only_local = local_only(config, options)
    needed = estimate_prompt(request) + (request.max_output_tokens or 0)
    runnable: list[Candidate] = []
    skipped: list[tuple[Candidate, Skip, str]] = []
    for cand in candidates(config, options):
        reason = skip_reason(cand, request, only_local, needed)
        if reason is None:
            runnable.append(cand)
        else:
            skipped.append((cand, *reason))
    found = Plan(runnable, skipped)
    if not runnable:
        raise nothing_to_run(found, needed)
    return found


def skip_reason(
    cand: Candidate, request: ChatRequest, only_local: bool, needed: int
) -> tuple[Skip, str] | None:
    """Why ``cand`` must not be called for ``request`` (``None`` when it may), with the text."""
    if only_local and not cand.local:
        return Skip.LOCAL_ONLY, Skip.LOCAL_ONLY.value
    if not cand.provider.supported:
        return Skip.UNSUPPORTED, f"unsupported api {cand.provider.api!r}"
    if request.previous_response_id and cand.provider.api not in THREAD_APIS:
        return Skip.NO_THREAD, Skip.NO_THREAD.value
    window = window_of(cand)
    if window is not None and needed > window:
        return Skip.TOO_SMALL, f"context window {window} < ~{needed} tokens needed"
    return None


def window_of(cand: Candidate) -> int | None:
    """The candidate's declared context window, if any."""
    return cand.model.context_window if cand.model else None


def nothing_to_run(found: Plan, needed: int) -> OffloadError:
    """The error for a chain whose every candidate was skipped."""
    refused = found.refused
    allowed = [(c, why, text) for c, why, text in found.skipped if why is not Skip.LOCAL_ONLY]
    if allowed and all(why is Skip.TOO_SMALL for _, why, _ in allowed):
        windows = [w for c, _, _ in allowed if (w := window_of(c))]
        hosted = f"; local-only refused {', '.join(refused)}" if refused else ""
        return ContextOverflow(
            f"the request (~{needed} tokens) fits no candidate: "
            + "; ".join(f"{c.name} {text}" for c, _, text in allowed)
            + hosted,
            prompt_tokens=needed,
            context_length=max(windows),
            remedy="shorten the input, lower --max-output-tokens, or add a larger-context model",
        )
    if refused:
        others = [f"{c.name} ({text})" for c, _, text in allowed]
        extra = f"; also skipped: {', '.join(others)}" if others else ""
        return LocalOnlyRefused(refused, remedy=f"add a local model to the chain, or drop local-only{extra}")
    return AllCandidatesFailed(
        found.attempts, remedy="fix the model chain in your config (offload config check)"
    )


def failover_notice(failed: Candidate, exc: ProviderError, following: Candidate) -> str:
    """The one-line stderr notice for a failover."""
    if (
        following.provider.api == "embedded"
        and failed.provider.api == "lmstudio"
        and isinstance(exc, Unreachable)
        and exc.refused
    ):
        return (
            f"offload: LM Studio is not running at {exc.address or failed.provider.base_url} — using the "
            "embedded engine (start LM Studio, or set LM_STUDIO_API_URL, to use your own models)"
        )
    return f"offload: {failed.name} failed ({exc.short()}) → trying {following.name}"


def no_fit(
    exc: ModelNotFound, models: list[ModelInfo], need: Need, cand: Candidate, address: str
) -> ProviderError:
    """Why no model of an ``auto`` provider fits: too small a context, or no suitable kind at all."""
    kinds = [m for m in models if m.is_llm and (m.vision or not need.vision)]
    if not kinds:
        return ModelNotFound(exc.message, remedy=exc.remedy, provider=cand.provider.id, address=address)
    # every model left was turned down for its window, so each has one
    windows = [w for m in kinds if (w := m.loaded_context_length if m.loaded else m.max_context_length)]
    return ContextOverflow(
        exc.message,
        remedy=exc.remedy,
        provider=cand.provider.id,
        address=address,
        prompt_tokens=need.tokens,
        context_length=max(windows),
    )
