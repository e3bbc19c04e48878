"""The kinds of work offload takes off paid providers, as async library functions.

Each function routes through an ``Offloader`` (the given one, or a new one from the config
file), applies the task's quality gate and escalation, and returns a ``TaskResult``::

    from offload import tasks
    result = await tasks.summarize(text, length="bullets")
    print(result.text, result.model, result.escalated)

The functions are generated from the task table (``offload.tasks.table``): their parameters
are the tasks' options, and ``run_task(name, text, options)`` runs any task by name. Keyword
settings shared by all: ``model``, ``local_only``, ``gate`` (off|checks|judge), ``on_fail``
(escalate|fail|warn), ``judge``, ``offloader``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from offload.tasks.table import SETTINGS as _SETTINGS
from offload.tasks.table import TASKS, TaskDef, check_settings, get_task, library_signature

if TYPE_CHECKING:
    from offload.offloader import Offloader
    from offload.tasks.runner import TaskResult, TaskRunner
    from offload.tasks.spec import TaskSpec

BUILTIN_TASKS = tuple(name for name in TASKS if name not in ("ask", "run"))
SETTINGS = tuple(s.name for s in _SETTINGS)
_SETTINGS_DOC = "Settings: " + ", ".join(f"``{s.name}``" for s in _SETTINGS) + "; ``offloader``."


@asynccontextmanager
async def _runner(offloader: Offloader | None) -> AsyncIterator[TaskRunner]:
    from offload.offloader import Offloader
    from offload.tasks.runner import TaskRunner

    if offloader is not None:
        yield TaskRunner(offloader.router)
        return
    async with Offloader() as off:
        yield TaskRunner(off.router)


async def run_spec(spec: TaskSpec, *, offloader: Offloader | None = None, **settings: Any) -> TaskResult:
    """Run any prepared ``TaskSpec`` with the task's configured settings plus ``settings``."""
    check_settings(settings)
    async with _runner(offloader) as runner:
        return await runner.run(spec, runner.settings_for(spec.name, **settings))


async def run_task(
    task: str | TaskDef,
    text: str,
    options: Mapping[str, Any] | None = None,
    *,
    offloader: Offloader | None = None,
    **settings: Any,
) -> TaskResult:
    """Run the task ``task`` (a name in ``TASKS`` or a ``TaskDef``) on ``text`` with its ``options``.

    Unknown options or settings raise ``TypeError``; bad values raise ``InputError``.
    """
    d = get_task(task) if isinstance(task, str) else task
    values = d.values(options or {})
    if d.resolve is not None:
        d, given = d.resolve(values)
        values = d.values(given)
    check_settings(settings)
    merged = {**d.settings, **settings}
    async with _runner(offloader) as runner:
        return await d.execute(runner, text, values, runner.settings_for(d.name, **merged))


def _function(name: str) -> Callable[..., Awaitable[TaskResult]]:
    """The library function of task ``name``: its signature from the table, its body ``run_task``."""
    d = TASKS[name]
    signature = library_signature(d)

    async def call(*args: Any, **kwargs: Any) -> TaskResult:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        settings = values.pop("settings")
        offloader = values.pop("offloader")
        text = values.pop(d.input)
        return await run_task(d, text, values, offloader=offloader, **settings)

    call.__name__ = call.__qualname__ = d.function or d.name
    call.__doc__ = "\n".join(
        [d.description, "", *(f"``{o.name}``: {o.help}" for o in d.on("library")), "", _SETTINGS_DOC]
    )
    call.__signature__ = signature  # type: ignore[attr-defined]
    return call


summarize = _function("summarize")
extract = _function("extract")
classify = _function("classify")
rewrite = _function("rewrite")
review = _function("review")
brainstorm = _function("brainstorm")
translate = _function("translate")
ask = _function("ask")
run_template = _function("run")

__all__ = [
    "BUILTIN_TASKS",
    "SETTINGS",
    "TASKS",
    "ask",
    "brainstorm",
    "classify",
    "extract",
    "review",
    "rewrite",
    "run_spec",
    "run_task",
    "run_template",
    "summarize",
    "translate",
]
