"""The failover policy: what happens after an error — the one place that decides.

Error classes carry the facts (``offload.errors``: ``retryable``, ``failover``, ``cools_down``,
``environmental``, and per instance ``refused``); ``decide`` combines them with the call's
``Situation`` into a ``Decision``:

1. content already reached the caller → **stop** (a stream cannot be taken back);
2. the error would fail on every candidate (``failover`` false) → **stop**;
3. the error is transient (``retryable``) and the retry budget allows → **retry** the same
   candidate after a pause — except a refused connection when another candidate is left:
   nothing runs there, so waiting is pointless;
4. another candidate is left → **fail over**;
5. otherwise → **stop**.

Leaving a candidate (fail over or stop) **cools it down** when the error class says the
candidate is unwell (``cools_down``); a retry does not.

``ending`` picks the error that ends a call whose chain ran out; ``environmental`` is the batch
rule (an item that meets an environment failure runs again later instead of being written).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from offload.errors import AllCandidatesFailed, Attempt, LocalOnlyRefused, OffloadError, ProviderError


class Action(Enum):
    """What the router does next after an error."""

    RETRY = "retry"
    """The same candidate again, after a pause."""
    FAILOVER = "failover"
    """The next candidate."""
    STOP = "stop"
    """End the call."""


@dataclass(frozen=True, slots=True)
class Situation:
    """The call's context when an error arrives."""

    another: bool = False
    """Another candidate is left to try after this one."""
    started: bool = False
    """Content (text or reasoning) already reached the caller."""
    retries_left: bool = False
    """The retry budget (attempts and time) allows one more try of this candidate."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do, and whether to rest the candidate."""

    action: Action
    cool_down: bool


def decide(exc: ProviderError, situation: Situation) -> Decision:
    """What to do after ``exc`` in ``situation`` (see the module docstring for the rules)."""
    if situation.started or not exc.failover:
        action = Action.STOP
    elif exc.retryable and situation.retries_left and not (exc.refused and situation.another):
        return Decision(Action.RETRY, cool_down=False)
    elif situation.another:
        action = Action.FAILOVER
    else:
        action = Action.STOP
    return Decision(action, cool_down=exc.cools_down)


def ending(
    exc: ProviderError | None,
    attempts: Sequence[Attempt],
    errors: Sequence[ProviderError],
    refused: Sequence[str],
    *,
    started: bool = False,
) -> OffloadError:
    """The error that ends a call; ``exc`` is the failure that stopped it (``None``: chain ran out).

    The failure itself when it would fail everywhere, when content was already streamed, or
    when it was the only call made; ``LocalOnlyRefused`` when local-only mode refused hosted
    candidates (only refused ones were left); else ``AllCandidatesFailed`` listing every attempt.
    """
    if exc is not None and (started or not exc.failover):
        return exc
    if refused:
        return LocalOnlyRefused(refused, attempts=attempts, errors=errors)
    if exc is not None and len(errors) == 1:
        return exc
    return AllCandidatesFailed(attempts, errors=errors)


def environmental(exc: OffloadError) -> bool:
    """True when ``exc`` says the servers or account are unusable, not that the input is bad."""
    if isinstance(exc, ProviderError):
        return exc.environmental
    if isinstance(exc, LocalOnlyRefused | AllCandidatesFailed):
        return all(environmental(e) for e in exc.errors)
    return False
