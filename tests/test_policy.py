"""The failover policy as a table: every error kind × the call's situation → retry / fail over / stop.

Pure functions, no I/O: ``decide`` (what happens after an error, and whether the candidate is
rested), ``ending`` (which error ends a call) and ``environmental`` (the batch rule).
"""

from __future__ import annotations

import itertools

import pytest

from offload import errors as E
from offload.errors import Attempt, ProviderError
from offload.routing.policy import Action, Decision, Situation, decide, ending, environmental

RETRY, FAILOVER, STOP = Action.RETRY, Action.FAILOVER, Action.STOP

# error                                      retries left:   no retries left:   started  cools
#                                            alone  another  alone  another             down
TABLE: list[tuple[ProviderError, Action, Action, Action, Action, Action, bool]] = [
    (E.Unreachable("reset"), RETRY, RETRY, STOP, FAILOVER, STOP, True),
    (E.Unreachable("refused", refused=True), RETRY, FAILOVER, STOP, FAILOVER, STOP, True),
    (E.Timeout("slow"), RETRY, RETRY, STOP, FAILOVER, STOP, True),
    (E.ServerError("503"), RETRY, RETRY, STOP, FAILOVER, STOP, True),
    (E.RateLimited("429", retry_after=2.0), RETRY, RETRY, STOP, FAILOVER, STOP, True),
    (E.EngineUnavailable("no llama_cpp"), STOP, FAILOVER, STOP, FAILOVER, STOP, True),
    (E.AuthError("401"), STOP, FAILOVER, STOP, FAILOVER, STOP, True),
    (E.BillingError("402"), STOP, FAILOVER, STOP, FAILOVER, STOP, True),
    (E.ModelNotFound("no such model"), STOP, FAILOVER, STOP, FAILOVER, STOP, True),
    (E.ModelNotLoaded("not loaded"), STOP, FAILOVER, STOP, FAILOVER, STOP, True),
    (E.OutOfMemory("model too big"), STOP, FAILOVER, STOP, FAILOVER, STOP, True),
    (E.BadResponse("garbled"), STOP, FAILOVER, STOP, FAILOVER, STOP, True),
    (E.ProviderError("other"), STOP, FAILOVER, STOP, FAILOVER, STOP, True),
    (E.ContextOverflow("too long"), STOP, FAILOVER, STOP, FAILOVER, STOP, False),
    (E.InvalidRequest("bad key"), STOP, STOP, STOP, STOP, STOP, False),
    (E.ResponseNotFound("expired"), STOP, STOP, STOP, STOP, STOP, False),
]

CASES = [
    pytest.param(row, another, retries_left, started, id=f"{row[0].kind}{'-refused' * row[0].refused}-{i}")
    for row in TABLE
    for i, (another, retries_left, started) in enumerate(itertools.product((False, True), repeat=3))
]


def _subclasses(cls: type[ProviderError]) -> set[type[ProviderError]]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _subclasses(sub)
    return found


def test_the_table_has_a_row_for_every_provider_error() -> None:
    assert {type(row[0]) for row in TABLE} == _subclasses(ProviderError)


@pytest.mark.parametrize(("row", "another", "retries_left", "started"), CASES)
def test_decision_table(
    row: tuple[ProviderError, Action, Action, Action, Action, Action, bool],
    another: bool,
    retries_left: bool,
    started: bool,
) -> None:
    exc, fresh_alone, fresh_another, spent_alone, spent_another, on_stream, cools = row
    if started:
        expected = on_stream
    elif retries_left:
        expected = fresh_another if another else fresh_alone
    else:
        expected = spent_another if another else spent_alone
    decision = decide(exc, Situation(another=another, started=started, retries_left=retries_left))
    assert decision.action is expected
    assert decision.cool_down is (cools and expected is not RETRY)


def test_the_default_situation_is_a_spent_lone_candidate_before_any_content() -> None:
    assert decide(E.ServerError("503"), Situation()) == Decision(STOP, cool_down=True)


# --- which error ends a call ------------------------------------------------------------------------


def _failed(name: str, exc: ProviderError) -> Attempt:
    return Attempt(name, "failed", 0.1, error=exc.short())


def test_a_lone_failure_keeps_its_own_error() -> None:
    exc = E.Unreachable("lmstudio is not reachable", refused=True)
    assert ending(exc, [_failed("lms/a", exc)], [exc], []) is exc


def test_several_failures_end_with_all_candidates_failed_listing_each() -> None:
    first, last = E.AuthError("401"), E.ServerError("500")
    attempts = [_failed("a/x", first), _failed("b/y", last)]
    out = ending(last, attempts, [first, last], [])
    assert isinstance(out, E.AllCandidatesFailed)
    assert out.errors == (first, last)
    assert out.attempts == tuple(attempts)


def test_a_chain_that_ran_out_without_a_last_error_is_all_candidates_failed() -> None:
    skipped = [Attempt("a/x", "skipped", 0.0, error="cooling down (30s left)")]
    out = ending(None, skipped, [], [])
    assert isinstance(out, E.AllCandidatesFailed)
    assert out.attempts == tuple(skipped)


@pytest.mark.parametrize("last", [None, E.Unreachable("down", refused=True), E.ContextOverflow("long")])
def test_only_refused_candidates_left_ends_with_local_only_refused(last: ProviderError | None) -> None:
    errors = [last] if last is not None else []
    attempts = [Attempt("cloud/big", "skipped", 0.0, error="local-only: hosted")]
    attempts += [_failed("local/small", e) for e in errors]
    out = ending(last, attempts, errors, ["cloud/big"])
    assert isinstance(out, E.LocalOnlyRefused)
    assert out.refused == ("cloud/big",)
    assert out.errors == tuple(errors)
    assert out.exit_code == 11


def test_local_only_refusal_names_the_local_failure_and_not_the_refused_one_twice() -> None:
    exc = E.Unreachable("lmstudio is not reachable at http://127.0.0.1:1234", refused=True)
    attempts = [Attempt("anthropic/claude-sonnet-4-6", "skipped", 0.0, error="local-only: hosted")]
    out = ending(exc, [*attempts, _failed("lmstudio/auto", exc)], [exc], ["anthropic/claude-sonnet-4-6"])
    assert str(out).splitlines()[0] == (
        "local-only mode refused hosted candidate(s): anthropic/claude-sonnet-4-6; the local one(s) failed: "
        "lmstudio/auto unreachable: lmstudio is not reachable at http://127.0.0.1:1234"
    )
    assert "start the server" in str(out)


@pytest.mark.parametrize("refused", [[], ["cloud/big"]])
def test_an_error_that_fails_everywhere_ends_the_call_as_itself(refused: list[str]) -> None:
    exc = E.InvalidRequest("Unrecognized key 'ttl'")
    other = E.ServerError("500")
    assert ending(exc, [], [other, exc], refused) is exc


@pytest.mark.parametrize("refused", [[], ["cloud/big"]])
def test_an_error_after_content_was_streamed_ends_the_call_as_itself(refused: list[str]) -> None:
    exc = E.ServerError("connection reset mid-stream")
    other = E.AuthError("401")
    assert ending(exc, [], [other, exc], refused, started=True) is exc


# --- the batch rule ---------------------------------------------------------------------------------

ENVIRONMENTAL = {
    E.Unreachable: True,
    E.Timeout: False,
    E.EngineUnavailable: True,
    E.AuthError: True,
    E.BillingError: True,
    E.ModelNotFound: True,
    E.ModelNotLoaded: True,
    E.ContextOverflow: False,
    E.ResponseNotFound: False,
    E.InvalidRequest: False,
    E.RateLimited: True,
    E.ServerError: False,
    E.OutOfMemory: True,
    E.BadResponse: False,
    E.ProviderError: False,
}


def test_the_environment_table_has_a_row_for_every_provider_error() -> None:
    assert set(ENVIRONMENTAL) == _subclasses(ProviderError)


@pytest.mark.parametrize(("cls", "expected"), ENVIRONMENTAL.items(), ids=lambda v: getattr(v, "__name__", ""))
def test_environmental_by_class(cls: type[ProviderError], expected: bool) -> None:
    assert environmental(cls("x")) is expected


def test_non_provider_errors_are_the_items_own() -> None:
    assert environmental(E.InputError("missing field")) is False
    assert environmental(E.QualityGateFailed("no model passed")) is False


@pytest.mark.parametrize("composite", [E.AllCandidatesFailed, E.LocalOnlyRefused])
def test_composites_are_environmental_only_when_every_failure_is(composite: type[E.OffloadError]) -> None:
    down, auth, long = E.Unreachable("down"), E.AuthError("401"), E.ContextOverflow("long")

    def make(errs: list[ProviderError]) -> E.OffloadError:
        if composite is E.AllCandidatesFailed:
            return E.AllCandidatesFailed([], errors=errs)
        return E.LocalOnlyRefused(["cloud/big"], errors=errs)

    assert environmental(make([down, auth])) is True
    assert environmental(make([down, long])) is False
    assert environmental(make([])) is True  # nothing was called: the chain itself is unusable
