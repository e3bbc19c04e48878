"""What a batch does to one item, per task: build its ``TaskSpec`` and run it through the task runner.

Owns ``Job`` and ``make_job``: every task of the table (``offload.tasks.table``) with its batch
options; user templates by name (their ``{variables}`` come from the item's fields, over
``variables``); and ``ask``, whose ``prompt`` template (``{text}`` and any field) makes each
item's prompt. String options may use ``{field}`` too, e.g. ``target="{lang}"`` translates each
item into its own language. Summaries keep the long-input path (split, summarize parts,
combine), so an item larger than the context is split, never cut; other tasks reject such an
item with a clear context-overflow error on its line.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from offload.batching.inputs import Item
from offload.errors import InputError, OffloadError
from offload.tasks.runner import RunSettings, TaskResult, TaskRunner
from offload.tasks.spec import TaskSpec
from offload.tasks.table import TASKS, TaskDef

if TYPE_CHECKING:
    from offload.routing.selection import Need

VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
Builder = Callable[[Item, Callable[[Any], Any]], TaskSpec]


def render(value: Any, item: Item, *, strict: bool = True) -> Any:
    """``value`` with ``{field}`` replaced from ``item`` (strings only; ``strict`` wants every field)."""
    if not isinstance(value, str) or "{" not in value:
        return value
    values = item.variables()

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return values[name]
        if strict:
            raise InputError(f"item {item.key!r} has no field {name!r} for {{{name}}}")
        return "x"

    return VAR.sub(sub, value)


@dataclass
class Job:
    """One task as a batch runs it."""

    name: str
    """The task name (config settings ``offload.tasks.<name>``, ledger, cache key)."""
    build: Builder
    needs_text: bool = True
    defaults: dict[str, Any] = field(default_factory=dict)
    """Run settings the task brings (a template's own chain, gate, on_fail)."""
    probe_fields: dict[str, Any] = field(default_factory=dict)
    """Stand-in fields for ``check`` (variables every item is expected to bring)."""
    runs: Callable[[TaskRunner, Item, RunSettings], Awaitable[TaskResult]] | None = None
    """Runs an item instead of ``runner.run(spec)`` (summaries take the long-input path)."""

    def spec(self, item: Item) -> TaskSpec:
        """The item's request (``InputError`` when a field it needs is missing)."""
        return self.build(item, lambda v: render(v, item))

    def check(self) -> None:
        """Fail early (``InputError``) when the options are unusable for every item."""
        probe = Item("check", "check text", self.probe_fields)
        self.build(probe, lambda v: render(v, probe, strict=False))

    async def run(self, runner: TaskRunner, item: Item, settings: RunSettings, spec: TaskSpec) -> TaskResult:
        """Run one item through gate, re-asks and escalation."""
        if self.runs is not None:
            return await self.runs(runner, item, settings)
        return await runner.run(spec, settings)


def fingerprint(spec: TaskSpec) -> dict[str, Any]:
    """What makes two items' requests identical (for the result cache)."""
    return {
        "name": spec.name,
        "system": spec.system,
        "prompt": spec.prompt,
        "output": spec.output,
        "schema": spec.schema,
        "max_output_tokens": spec.max_output_tokens,
        "temperature": spec.temperature,
        "meta": {k: v for k, v in spec.meta.items() if isinstance(v, str | int | float | bool | list)},
    }


def make_job(task: str, options: Mapping[str, Any]) -> Job:
    """The job for ``task`` (a task of the table, or a user template name) with its options."""
    if task == "run":
        given = dict(options)
        task = str(given.pop("name", "") or "")
        options = given
    d = TASKS.get(task)
    job = _template(task, options) if d is None or d.resolve is not None else _job(d, options)
    job.check()
    return job


def _job(d: TaskDef, given: Mapping[str, Any]) -> Job:
    """A table task: string options fill ``{field}`` per item; ``ask``'s prompt is the text."""
    values = d.values(given, "batch")
    prompt = values.pop("prompt", None) if d.name == "ask" else None

    templated = {o.name for o in d.on("batch") if o.per_item}

    def resolved(item: Item, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any]]:
        opts = {k: r(v) if k in templated else v for k, v in values.items()}
        if prompt is None:
            return item.text or "", opts
        text = str(r(prompt))
        if not text.strip():
            raise InputError(f"item {item.key!r}: the prompt is empty")
        return text, opts

    def build(item: Item, r: Callable[[Any], Any]) -> TaskSpec:
        text, opts = resolved(item, r)
        return d.build(text, **opts)

    async def runs(runner: TaskRunner, item: Item, settings: RunSettings) -> TaskResult:
        text, opts = resolved(item, lambda v: render(v, item))
        return await d.execute(runner, text, opts, settings)

    needs_text = prompt is None or "{text}" in str(prompt)
    return Job(d.name, build, needs_text=needs_text, runs=runs if d.run is not None else None)


def _template(name: str, o: Mapping[str, Any]) -> Job:
    """A user template (``template_task``): each item's fields fill its variables, over ``variables``."""
    from offload.tasks.table import template_task

    unknown = [k for k in o if k != "variables"]
    if unknown:
        raise TypeError(f"unknown option(s) for batch {name}: {', '.join(unknown)}; known: variables")
    d = template_task(name)
    given = {str(k): str(v) for k, v in dict(o.get("variables") or {}).items()}

    def build(item: Item, r: Callable[[Any], Any]) -> TaskSpec:
        return d.build(item.text or "", **{**given, **item.variables()})

    return Job(
        name,
        build,
        defaults=dict(d.settings),
        probe_fields={o.name: "x" for o in d.options},
    )


def typical_need(job: Job, todo: list[Item]) -> Need | None:
    """The median request size of the first items, for choosing an ``auto`` model."""
    from offload.routing.selection import Need
    from offload.tokens import DEFAULT_MAX_OUTPUT

    needs: list[Need] = []
    for item in todo[:32]:
        with contextlib.suppress(OffloadError):
            spec = job.spec(item)
            needs.append(Need.of(spec.request(), spec.max_output_tokens or DEFAULT_MAX_OUTPUT))
    if not needs:
        return None
    needs.sort(key=lambda n: n.tokens)
    return needs[len(needs) // 2]
