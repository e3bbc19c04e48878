"""The error tree: every failure a user can meet, with what to do about it.

::

    OffloadError                      exit 1   root; ``str(e)`` is the user-facing message + remedy
    ├── ConfigError(ValueError)       exit 2   bad config file or setting (names the key path)
    ├── InputError(ValueError)        exit 2   bad input from the caller (file, line, field)
    ├── ProviderError                 exit 1   a model server failed; carries provider/model/status
    │   ├── Unreachable(ConnectionError)   exit 3   nothing answers at the address (retryable)
    │   ├── Timeout(TimeoutError)          exit 7   connect/read took too long (retryable)
    │   ├── EngineUnavailable              exit 3   the in-process engine is not installed/usable
    │   ├── AuthError                      exit 4   token missing or rejected (401/403)
    │   │   └── BillingError                        402 / out of credits
    │   ├── ModelNotFound(LookupError)     exit 5   unknown key; names the closest ones
    │   ├── ModelNotLoaded                 exit 5   nothing loaded and JIT off / load failed
    │   ├── ContextOverflow                exit 6   prompt does not fit the loaded context
    │   ├── ResponseNotFound               exit 9   unknown/expired previous_response_id
    │   ├── InvalidRequest(ValueError)     exit 9   the server rejected the request itself
    │   ├── RateLimited                    exit 8   429; ``retry_after`` seconds if given
    │   ├── ServerError                    exit 8   5xx (retryable), incl. overloaded/loading
    │   └── BadResponse                    exit 8   an answer we cannot read (200-with-error quirk)
    ├── AllCandidatesFailed           exit 10  the router tried every candidate; ``attempts`` lists them
    ├── LocalOnlyRefused              exit 11  local-only mode would have needed a hosted model
    ├── UnloadIncomplete              exit 1   instances still loaded after an unload
    └── QualityGateFailed             exit 12  the answer failed validation and could not escalate

Error classes carry the *facts* that routing needs; ``offload.routing.policy.decide`` turns
them, with the call's situation, into retry / fail over / stop (the one place that decides):

==================  =========  ========  ==========  =============
class               retryable  failover  cools_down  environmental
==================  =========  ========  ==========  =============
Unreachable         yes        yes       yes         yes
Timeout             yes        yes       yes         no
EngineUnavailable   no         yes       yes         yes
AuthError, Billing  no         yes       yes         yes
ModelNotFound       no         yes       yes         yes
ModelNotLoaded      no         yes       yes         yes
ContextOverflow     no         yes       no          no
ResponseNotFound    no         no        no          no
InvalidRequest      no         no        no          no
RateLimited         yes        yes       yes         yes
ServerError         yes        yes       yes         no
OutOfMemory         no         yes       yes         yes
BadResponse         no         yes       yes         no
==================  =========  ========  ==========  =============

* ``retryable``: the same call may succeed if repeated after a pause (network blips, 5xx, 429).
* ``failover``: another candidate model may succeed (false for a malformed request, which would
  fail everywhere, and for a thread id only this server knows).
* ``cools_down``: the failure says the candidate is unwell, so it is rested for a while (false
  when only this request is at fault: too long, malformed, unknown thread).
* ``environmental``: the server or account is unusable whatever the input, so a batch item
  that meets it runs again later instead of being written as failed.

Two per-instance facts complete them: ``refused`` (the connection was refused: nothing runs at
the address, so a router with another candidate moves on at once) and ``retry_after`` (the
server's own hint, in seconds).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


class OffloadError(Exception):
    """Root of every error offload raises on purpose."""

    exit_code: ClassVar[int] = 1
    kind: ClassVar[str] = "error"

    def __init__(self, message: str, *, remedy: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy

    def __str__(self) -> str:
        if self.remedy:
            return f"{self.message}\n  → {self.remedy}"
        return self.message


class ConfigError(OffloadError, ValueError):
    """The configuration file or a setting is invalid; the message names the key path."""

    exit_code = 2
    kind = "config"


class InputError(OffloadError, ValueError):
    """The caller's input is unusable (missing file, bad JSON line, unknown field)."""

    exit_code = 2
    kind = "input"


class ProviderError(OffloadError):
    """A model server call failed. Subclasses say how; attributes say where."""

    kind = "provider_error"
    retryable: ClassVar[bool] = False
    failover: ClassVar[bool] = True
    cools_down: ClassVar[bool] = True
    environmental: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        remedy: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        address: str | None = None,
        status: int | None = None,
        code: str | None = None,
        refused: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, remedy=remedy)
        self.refused = refused
        """The connection was refused: nothing runs at the address (see ``Unreachable``)."""
        self.retry_after = retry_after
        """The server's hint, in seconds, for when to try again (429, 503)."""
        self.provider = provider
        self.model = model
        self.address = address
        self.status = status
        self.code = code
        self.attempts: tuple[Attempt, ...] = ()
        """Set by the router: every candidate tried before this error ended the call."""

    def short(self) -> str:
        """One line for attempt lists: kind, status and the message's first line."""
        status = f" {self.status}" if self.status else ""
        first = self.message.splitlines()[0] if self.message else ""
        return f"{self.kind}{status}: {first}"


class Unreachable(ProviderError, ConnectionError):
    """Nothing answers at the server address (refused, reset, DNS failure).

    ``refused`` marks an immediate connection refusal: the server is not running, so a
    router with another candidate fails over at once instead of retrying.
    """

    exit_code = 3
    kind = "unreachable"
    retryable = True
    environmental = True


class Timeout(ProviderError, TimeoutError):
    """The server did not answer in time."""

    exit_code = 7
    kind = "timeout"
    retryable = True


class EngineUnavailable(ProviderError):
    """The embedded engine cannot run here (``llama-cpp-python`` missing, model file unreadable)."""

    exit_code = 3
    kind = "engine_unavailable"
    environmental = True


class AuthError(ProviderError):
    """The server wants a token and none was sent, or it rejected the one sent."""

    exit_code = 4
    kind = "auth"
    environmental = True


class BillingError(AuthError):
    """The hosted account is out of credits or blocked for billing (HTTP 402)."""

    kind = "billing"


class ModelNotFound(ProviderError, LookupError):
    """The server does not know the requested model."""

    exit_code = 5
    kind = "model_not_found"
    environmental = True

    def __init__(self, message: str, *, available: Sequence[str] = (), **kw: Any) -> None:
        self.available = tuple(available)
        super().__init__(message, **kw)


class ModelNotLoaded(ProviderError):
    """No model is loaded and the server would not load one (JIT off, load failed)."""

    exit_code = 5
    kind = "model_not_loaded"
    environmental = True


class ContextOverflow(ProviderError):
    """The prompt does not fit in the model's (loaded) context window. Never retried unchanged."""

    exit_code = 6
    kind = "context_overflow"
    cools_down = False

    def __init__(
        self,
        message: str,
        *,
        prompt_tokens: int | None = None,
        context_length: int | None = None,
        **kw: Any,
    ) -> None:
        self.prompt_tokens = prompt_tokens
        self.context_length = context_length
        super().__init__(message, **kw)


class ResponseNotFound(ProviderError):
    """``previous_response_id`` is unknown or expired; the thread cannot continue."""

    exit_code = 9
    kind = "response_not_found"
    failover = False
    cools_down = False


class InvalidRequest(ProviderError, ValueError):
    """The server rejected the request as malformed; another model would reject it too."""

    exit_code = 9
    kind = "invalid_request"
    failover = False
    cools_down = False

    def __init__(self, message: str, *, param: str | None = None, **kw: Any) -> None:
        self.param = param
        super().__init__(message, **kw)


class RateLimited(ProviderError):
    """HTTP 429: too many requests; ``retry_after`` is the server's hint in seconds."""

    exit_code = 8
    kind = "rate_limited"
    retryable = True
    environmental = True


class ServerError(ProviderError):
    """The server failed (5xx, overloaded, still loading). Usually transient."""

    exit_code = 8
    kind = "server_error"
    retryable = True


class OutOfMemory(ServerError):
    """A model did not fit in the server's memory when loading. Retrying unchanged will not help."""

    kind = "out_of_memory"
    retryable = False
    environmental = True


class BadResponse(ProviderError):
    """The server answered with something we cannot interpret."""

    exit_code = 8
    kind = "bad_response"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of one candidate, kept for the ledger and for the final error message."""

    candidate: str
    outcome: str
    seconds: float
    error: str | None = None
    status: int | None = None
    address: str | None = None


class AllCandidatesFailed(OffloadError):
    """Every candidate in the chain failed (or was skipped); ``attempts`` says how."""

    exit_code = 10
    kind = "all_failed"

    def __init__(
        self,
        attempts: Sequence[Attempt],
        *,
        remedy: str | None = None,
        errors: Sequence[ProviderError] = (),
    ) -> None:
        self.attempts = tuple(attempts)
        self.errors = tuple(errors)
        """The provider errors behind the failed attempts, in order."""
        names = {a.candidate for a in attempts}
        parts = "; ".join(
            f"{a.candidate} {a.error or a.outcome}"
            + (f" at {a.address}" if a.address and a.address not in (a.error or "") else "")
            for a in attempts
        )
        super().__init__(f"all {len(names)} candidates failed: {parts}", remedy=remedy)


class LocalOnlyRefused(OffloadError):
    """Local-only mode is on and only hosted candidates could serve the call.

    Raised before any request when every candidate is hosted, and after the local candidates
    failed when only refused hosted ones were left; then ``attempts`` and ``errors`` say how
    the local ones failed.
    """

    exit_code = 11
    kind = "local_only"

    def __init__(
        self,
        refused: Sequence[str],
        *,
        remedy: str | None = None,
        attempts: Sequence[Attempt] = (),
        errors: Sequence[ProviderError] = (),
    ) -> None:
        self.refused = tuple(refused)
        self.attempts = tuple(attempts)
        self.errors = tuple(errors)
        message = "local-only mode refused hosted candidate(s): " + ", ".join(self.refused)
        failed = [a for a in self.attempts if a.outcome != "ok" and a.candidate not in self.refused]
        if failed:
            message += "; the local one(s) failed: " + "; ".join(
                f"{a.candidate} {a.error or a.outcome}" for a in failed
            )
        super().__init__(
            message,
            remedy=remedy
            or (
                "fix the local failure above (start the server, load the model), or drop --local-only /"
                " offload.localOnly for this call"
                if failed
                else "add a local model to the chain, or drop --local-only / offload.localOnly for this call"
            ),
        )


class UnloadIncomplete(OffloadError):
    """Instances were still loaded after unloading them."""

    kind = "unload_incomplete"

    def __init__(self, remaining: Sequence[str], address: str) -> None:
        self.remaining = tuple(remaining)
        super().__init__(
            f"still loaded on {address} after unload: {', '.join(self.remaining)}",
            remedy="retry `offload unload`, or unload them in LM Studio (or `lms unload --all`)",
        )


class QualityGateFailed(OffloadError):
    """The answer failed the quality gate and no escalation was allowed or possible."""

    exit_code = 12
    kind = "quality_gate"


def closest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The ``n`` candidates that look most like ``name`` (for "did you mean" hints)."""
    import difflib

    pool = list(candidates)
    lowered = {c.lower(): c for c in pool}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.3)
    out = [lowered[h] for h in hits]
    for c in pool:  # substring matches catch "gemma" -> "google/gemma-3-1b"
        if len(out) >= n:
            break
        if name.lower() in c.lower() and c not in out:
            out.append(c)
    return out
