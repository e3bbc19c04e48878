"""Running a task through the router with a quality gate, re-asks and escalation.

1. The task's chain (``offload.tasks.<name>.model`` or the default) is routed as usual:
   unreachable or failing candidates fail over as for any call.
2. The answer goes through the gate: ``off`` (accept), ``checks`` (parse/validate JSON, cheap
   text checks) or ``judge`` (checks, then a stronger model scores local answers on a sample).
3. A failed check is re-asked on the same model with the problems quoted (twice for JSON,
   once for text) — a free, exact signal for structured output.
4. Still failing: ``on_fail`` decides — ``escalate`` to the next model in the chain (typically
   hosted; refused in local-only mode, which then fails with the problems), ``fail``, or
   ``warn`` (return the answer with its problems).

The result says which model answered, whether it escalated and why.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from offload.errors import Attempt, LocalOnlyRefused, QualityGateFailed
from offload.routing.router import CallOptions, Routed, Router
from offload.tasks import progress
from offload.tasks.spec import TaskSpec
from offload.tasks.structured import parse_json
from offload.tasks.taskdef import Gate, OnFail
from offload.types import ChatRequest, JsonSchema, Message, Usage

JUDGE_SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 10}, "reason": {"type": "string"}},
    "required": ["score", "reason"],
}


@dataclass(frozen=True)
class RunSettings:
    """How one task call is gated and routed (call > task config > defaults)."""

    model: str | None = None
    chain: tuple[str, ...] | None = None
    local_only: bool | None = None
    gate: Gate = "checks"
    on_fail: OnFail = "escalate"
    judge: str | None = None
    judge_sample: float = 1.0
    judge_threshold: float = 7.0
    reasks: int | None = None


@dataclass(frozen=True)
class TaskResult:
    """A task's output and how it was obtained."""

    task: str
    output: Any
    text: str
    model: str
    local: bool
    escalated: bool = False
    escalations: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    gate: str = "checks"
    judge_score: float | None = None
    attempts: tuple[Attempt, ...] = ()
    usage: Usage = field(default_factory=Usage)
    parts: int = 1
    """How many pieces the input was split into (summaries of inputs beyond the context)."""

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` shape."""
        return {
            "task": self.task,
            "output": self.output,
            "text": self.text,
            "model": self.model,
            "local": self.local,
            "escalated": self.escalated,
            "escalations": list(self.escalations),
            "problems": list(self.problems),
            "gate": {"mode": self.gate, "passed": not self.problems, "judge_score": self.judge_score},
            "usage": {"input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens},
            "parts": self.parts,
            "attempts": [
                {"candidate": a.candidate, "outcome": a.outcome, "error": a.error} for a in self.attempts
            ],
        }


@dataclass
class _Run:
    spec: TaskSpec
    settings: RunSettings
    attempts: list[Attempt] = field(default_factory=list)
    escalations: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    judge_score: float | None = None

    def add(self, routed: Routed) -> None:
        self.attempts += routed.attempts
        u = routed.result.usage
        self.usage = Usage(
            self.usage.input_tokens + u.input_tokens,
            self.usage.output_tokens + u.output_tokens,
            self.usage.reasoning_tokens + u.reasoning_tokens,
        )


class TaskRunner:
    """Runs ``TaskSpec``s on a router."""

    def __init__(self, router: Router, *, rng: Callable[[], float] = random.random) -> None:
        self.router = router
        self._rng = rng

    def settings_for(self, task: str, **call: Any) -> RunSettings:
        """Merge per-call settings over ``offload.tasks.<task>`` from the config."""
        cfg = self.router.config.task(task)
        opts = cfg.options
        merged: dict[str, Any] = {
            "gate": cfg.gate or "checks",
            "on_fail": cfg.on_fail or "escalate",
            "local_only": cfg.local_only,
            "judge": opts.get("judge"),
            "judge_sample": float(opts.get("judgeSample", 1.0)),
            "judge_threshold": float(opts.get("judgeThreshold", 7.0)),
        }
        merged.update({k: v for k, v in call.items() if v is not None})
        return RunSettings(**merged)

    async def run(self, spec: TaskSpec, settings: RunSettings | None = None) -> TaskResult:
        """Run ``spec`` through gate and escalation; see the module docstring."""
        st = settings or self.settings_for(spec.name)
        run = _Run(spec, st)
        chain = self.chain(spec.name, st)
        start = 0
        while start < len(chain):
            routed = await self._call(run, spec.request(), tuple(chain[start:]))
            output, problems, routed = await self._gate(run, routed)
            if not problems or st.on_fail == "warn" or st.gate == "off":
                return self._result(run, output, problems, routed)
            served = routed.candidate.name
            if st.on_fail == "fail":
                raise QualityGateFailed(f"{spec.name}: {served} failed the gate: {'; '.join(problems)}")
            run.escalations.append(f"{served}: {'; '.join(problems)}")
            progress.report(f"{spec.name}: {served} failed the gate; escalating")
            start = chain.index(served) + 1 if served in chain else len(chain)
        raise QualityGateFailed(
            f"{spec.name}: no model passed the gate: " + " | ".join(run.escalations),
            remedy="add a stronger model to the task's chain (offload.tasks."
            f"{spec.name}.model), use --on-fail warn, or simplify the request",
        )

    def chain(self, task: str, st: RunSettings) -> list[str]:
        """The task's candidate names: an explicit chain, or model/task chain from the config."""
        opts = CallOptions(model=st.model, task=task, chain=st.chain if st.model is None else None)
        return [c.name for c in self.router.candidates(opts)]

    async def _call(self, run: _Run, request: ChatRequest, chain: tuple[str, ...]) -> Routed:
        opts = CallOptions(
            chain=chain,
            task=run.spec.name,
            local_only=run.settings.local_only,
            escalated=bool(run.escalations),
        )
        try:
            routed = await self.router.chat(request, opts)
        except LocalOnlyRefused as exc:
            if not run.escalations:
                raise
            raise QualityGateFailed(
                f"{run.spec.name}: the local answer failed the gate ({' | '.join(run.escalations)}) and "
                f"local-only mode refused escalating to {', '.join(exc.refused)}",
                remedy="allow hosted models for this task, or use --on-fail warn to take the local answer",
            ) from exc
        run.add(routed)
        return routed

    async def _gate(self, run: _Run, routed: Routed) -> tuple[Any, list[str], Routed]:
        spec, st = run.spec, run.settings
        output, problems = spec.accept(routed.result)
        if st.gate == "off":
            return output, problems, routed
        tries = st.reasks if st.reasks is not None else (2 if spec.output == "json" else 1)
        served = routed.candidate.name
        for _ in range(tries):
            if not problems:
                break
            routed = await self._call(run, spec.reask(routed.result.content, problems), (served,))
            output, problems = spec.accept(routed.result)
        if not problems and st.gate == "judge" and routed.candidate.local and self._rng() < st.judge_sample:
            problems = await self._judge(run, routed, output)
        return output, problems, routed

    async def _judge(self, run: _Run, routed: Routed, output: Any) -> list[str]:
        spec, st = run.spec, run.settings
        chain = self.chain(spec.name, st)
        judge = st.judge or (chain[-1] if chain[-1] != routed.candidate.name else None)
        if judge is None:
            return []
        prompt = (
            f"Grade an answer from 1 (useless) to 10 (excellent). Criterion: {spec.rubric}\n\n"
            f"Instructions given:\n<<<\n{spec.prompt[:6000]}\n>>>\n\n"
            f"Answer:\n<<<\n{spec.render(output)[:4000]}\n>>>\n"
            'Reply as JSON: {"score": <1-10>, "reason": "<one sentence>"}'
        )
        request = ChatRequest(
            messages=(Message("system", "You are a strict, fair grader."), Message("user", prompt)),
            max_output_tokens=200,
            temperature=0.0,
            response_format=JsonSchema(JUDGE_SCHEMA, name="grade"),
        )
        graded = await self.router.chat(
            request, CallOptions(chain=(judge,), task=f"{spec.name}.judge", local_only=st.local_only)
        )
        run.add(graded)
        try:
            verdict = parse_json(graded.result.content)
            score = float(verdict["score"])
        except (ValueError, KeyError, TypeError):
            return []  # an unreadable grade does not fail the answer
        run.attempts.append(Attempt(f"judge {judge}", "ok", 0.0, error=f"score {score:g}"))
        if score < st.judge_threshold:
            return [f"the judge ({judge}) scored it {score:g}/10: {verdict.get('reason', '')}".strip()]
        run.judge_score = score
        return []

    def _result(self, run: _Run, output: Any, problems: list[str], routed: Routed) -> TaskResult:
        text = run.spec.render(output) if not isinstance(output, str) else output
        return TaskResult(
            task=run.spec.name,
            output=output,
            text=text,
            model=f"{routed.candidate.ref.provider}/{routed.result.model or routed.candidate.ref.model}",
            local=routed.candidate.local,
            escalated=bool(run.escalations),
            escalations=tuple(run.escalations),
            problems=tuple(problems),
            gate=run.settings.gate,
            judge_score=run.judge_score,
            attempts=tuple(run.attempts),
            usage=run.usage,
        )
