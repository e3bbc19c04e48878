"""What a task declaration is: ``Option``, ``TaskDef``, and the settings every task shares.

The declarations themselves are the task table (``offload.tasks.table``). This module holds
the shapes and the vocabulary they use, declared once: the gate modes (``Gate``), what to do
when the gate fails (``OnFail``), the option types and the surfaces a task or option appears
on (the library, the CLI, batch, the JSON Schema), plus the library signature an entry implies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from offload.errors import InputError

if TYPE_CHECKING:
    from offload.tasks.runner import RunSettings, TaskResult, TaskRunner
    from offload.tasks.spec import TaskSpec

Gate = Literal["off", "checks", "judge"]
OnFail = Literal["escalate", "fail", "warn"]
GATES: tuple[str, ...] = get_args(Gate)
ON_FAIL: tuple[str, ...] = get_args(OnFail)

OptionType = Literal[
    "string", "integer", "number", "boolean", "string_list", "json_schema", "string_map", "string_or_integer"
]
"""``string_list``: a list of strings (CLI: ``a,b,c`` or ``--NAME-file``); ``json_schema``: a JSON
Schema object (CLI: a file); ``string_map``: string variables (CLI: ``--var KEY=VALUE``);
``string_or_integer``: one of ``choices`` or a number (CLI: digits become the number)."""
Surface = Literal["library", "cli", "batch", "schema"]
ALL: frozenset[Surface] = frozenset(get_args(Surface))
Builder = Callable[..., "TaskSpec"]
Runner = Callable[["TaskRunner", str, Mapping[str, Any], "RunSettings"], Awaitable["TaskResult"]]


@dataclass(frozen=True)
class Option:
    """One input of a task (or one shared setting)."""

    name: str
    type: OptionType
    help: str
    default: Any = None
    choices: tuple[str, ...] = ()
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    flag: str | None = None
    """CLI long flag (default ``--name-with-dashes``)."""
    short: str | None = None
    off_flag: str | None = None
    """For a tri-state boolean: the CLI flag that sets it false (default unset)."""
    metavar: str | None = None
    argument: bool = False
    """A CLI positional argument (``offload run NAME``) instead of a flag."""
    surfaces: frozenset[Surface] = ALL
    missing: str = ""
    """The error when a required option is not given (default: ``<task> needs <name>``)."""

    @property
    def cli_flag(self) -> str:
        """The CLI long flag."""
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def per_item(self) -> bool:
        """Batch fills ``{field}`` placeholders in this option from each item."""
        return self.type == "string" and not self.choices

    def schema(self) -> dict[str, Any]:
        """This option as a JSON Schema property."""
        prop: dict[str, Any] = dict(_TYPES[self.type])
        if self.type == "string_or_integer":
            prop = {"anyOf": [{"type": "string", "enum": list(self.choices)}, {"type": "integer"}]}
            if self.minimum is not None:
                prop["anyOf"][1]["minimum"] = self.minimum
        elif self.choices:
            prop["enum"] = list(self.choices)
        if self.type != "string_or_integer":
            prop.update(
                {k: v for k, v in (("minimum", self.minimum), ("maximum", self.maximum)) if v is not None}
            )
        prop["description"] = self.help
        if self.default is not None:
            prop["default"] = self.default
        return prop

    def coerce(self, value: Any, task: str) -> Any:
        """``value`` in this option's shape (digit strings to numbers, ``a,b`` to a list)."""
        if value is None:
            return None
        if self.type == "string_list" and isinstance(value, str):
            return [x.strip() for x in value.split(",") if x.strip()]
        if self.type in ("integer", "string_or_integer") and isinstance(value, str) and value.isdigit():
            return int(value)
        if self.type == "string" and self.choices and value not in self.choices:
            raise InputError(
                f"{task}: {self.name} must be one of {', '.join(self.choices)}, not {value!r}",
                remedy=f"use {self.cli_flag} " + "|".join(self.choices),
            )
        return value


_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "string_list": {"type": "array", "items": {"type": "string"}},
    "json_schema": {"type": "object"},
    "string_map": {"type": "object", "additionalProperties": {"type": "string"}},
    "string_or_integer": {},
}


@dataclass(frozen=True)
class TaskDef:
    """One task: what it takes, how its request is built, what it returns."""

    name: str
    description: str
    """One line; the command's help and the tool's description."""
    build: Builder
    """``build(text, /, **options) -> TaskSpec``."""
    options: tuple[Option, ...] = ()
    output: Literal["text", "json"] = "text"
    checks: tuple[str, ...] = ()
    """What the ``checks`` gate verifies beyond non-empty, no refusal, valid JSON."""
    input: str = "text"
    """The library's name for the main input (the JSON Schema always calls it ``text``)."""
    input_help: str = "The text to work on."
    metavar: str = "TEXT"
    cli_input: Literal["text", "path"] = "text"
    """How the CLI reads the input: TEXT/@FILE/stdin, or a PATH (or stdin)."""
    positional: tuple[str, ...] = ()
    """Library parameters before ``*`` (the input first unless listed)."""
    function: str = ""
    """The ``offload.tasks`` function name (default: the task name)."""
    run: Runner | None = None
    """Runs the task instead of ``runner.run(build(...))`` (summaries split long inputs)."""
    infer: Callable[[str, str | None], Mapping[str, Any]] | None = None
    """Option values guessed from the input and its path, for options left at their default."""
    resolve: Callable[[Mapping[str, Any]], tuple[TaskDef, dict[str, Any]]] | None = None
    """Turns the call into another task (``run`` → the named template)."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """Settings the task brings (a template's chain, gate, on_fail); the call's win."""
    surfaces: frozenset[Surface] = ALL

    def on(self, surface: Surface) -> tuple[Option, ...]:
        """The options offered on ``surface``."""
        return tuple(o for o in self.options if surface in o.surfaces)

    def option(self, name: str) -> Option:
        """The option called ``name``."""
        return next(o for o in self.options if o.name == name)

    def values(self, given: Mapping[str, Any], surface: Surface = "library") -> dict[str, Any]:
        """Every option's value: ``given`` checked and coerced, defaults for the rest.

        Unknown names raise ``TypeError``; a missing required option raises ``InputError``.
        """
        known = {o.name: o for o in self.on(surface)}
        unknown = [k for k in given if k not in known]
        if unknown:
            raise TypeError(
                f"unknown option(s) for {self.name}: {', '.join(unknown)}; known: {', '.join(known)}"
            )
        out: dict[str, Any] = {}
        for name, opt in known.items():
            value = opt.coerce(given.get(name), self.name)
            if value is None and opt.required:
                raise InputError(
                    opt.missing or f"{self.name} needs {name}", remedy=f"give {opt.cli_flag} ({opt.help})"
                )
            out[name] = opt.default if value is None else value
        return out

    async def execute(
        self, runner: TaskRunner, text: str, values: Mapping[str, Any], settings: RunSettings
    ) -> TaskResult:
        """Run the task once on ``runner`` with resolved option ``values``."""
        if self.run is not None:
            return await self.run(runner, text, values, settings)
        return await runner.run(self.build(text, **values), settings)


# --- the shared settings ---------------------------------------------------------------------

_LIBRARY: frozenset[Surface] = frozenset({"library"})
SETTINGS: tuple[Option, ...] = (
    Option(
        "model", "string", "Model, alias or provider/model to start the chain.", short="-m", metavar="REF"
    ),
    Option("local_only", "boolean", "Never contact a hosted provider.", off_flag="--allow-hosted"),
    Option("gate", "string", "Quality gate (default: checks).", choices=GATES),
    Option(
        "on_fail", "string", "When the gate fails (default: escalate to the next model).", choices=ON_FAIL
    ),
    Option("judge", "string", "Model that scores answers for gate judge.", metavar="REF"),
    Option("judge_sample", "number", "Share of local answers the judge scores.", surfaces=_LIBRARY),
    Option("judge_threshold", "number", "Lowest passing judge score (1-10).", surfaces=_LIBRARY),
    Option("reasks", "integer", "Re-asks on the same model after a failed check.", surfaces=_LIBRARY),
    Option("chain", "string_list", "Explicit candidate chain (provider/model refs).", surfaces=_LIBRARY),
)
"""Settings every task accepts: how it is routed and gated (not what it does)."""


def settings_on(surface: Surface) -> tuple[Option, ...]:
    """The shared settings offered on ``surface``."""
    return tuple(s for s in SETTINGS if surface in s.surfaces)


def check_settings(settings: Mapping[str, Any]) -> None:
    """``TypeError`` for an unknown setting, ``InputError`` for a value outside its choices."""
    known = {s.name: s for s in SETTINGS}
    unknown = [k for k in settings if k not in known]
    if unknown:
        raise TypeError(f"unknown task setting(s): {', '.join(unknown)}; known: {', '.join(known)}")
    for name, value in settings.items():
        known[name].coerce(value, "settings")


def library_signature(d: TaskDef) -> Any:
    """The ``inspect.Signature`` of ``d``'s ``offload.tasks`` function."""
    import inspect

    P = inspect.Parameter
    positional = d.positional or (d.input,)
    params: list[inspect.Parameter] = []
    for name in positional:
        if name == d.input:
            params.append(P(name, P.POSITIONAL_OR_KEYWORD, annotation="str"))
        else:
            opt = d.option(name)
            default = P.empty if opt.required else opt.default
            params.append(P(name, P.POSITIONAL_OR_KEYWORD, default=default, annotation=_annotation(opt)))
    for opt in d.on("library"):
        if opt.name not in positional:
            params.append(P(opt.name, P.KEYWORD_ONLY, default=opt.default, annotation=_annotation(opt)))
    params.append(P("offloader", P.KEYWORD_ONLY, default=None, annotation="Offloader | None"))
    params.append(P("settings", P.VAR_KEYWORD, annotation="Any"))
    return inspect.Signature(params, return_annotation="TaskResult")


def _annotation(opt: Option) -> str:
    base = {
        "string": "str",
        "integer": "int",
        "number": "float",
        "boolean": "bool",
        "string_list": "Sequence[str]",
        "json_schema": "Mapping[str, Any]",
        "string_map": "Mapping[str, str]",
        "string_or_integer": "str | int",
    }[opt.type]
    return base if opt.required or opt.default is not None else f"{base} | None"
