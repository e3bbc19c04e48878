"""Click parameters from the task table's options, and the option values they give back.

Shared by ``offload <task>`` (``offload.cli.tasks``) and ``offload batch <task>``
(``offload.cli.batch``), so both offer exactly the options the table declares. How each option
type looks on the command line: ``string_list`` is ``--labels a,b,c`` or ``--labels-file FILE``
(one per line); ``json_schema`` is a file (JSON or JSON5); ``string_map`` is ``--var KEY=VALUE``,
repeatable; a ``string_or_integer`` given as digits becomes a number.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from offload.tasks.table import Option

F = TypeVar("F", bound=Callable[..., Any])
FIELDS_HELP = "May use {field} placeholders filled from each item."


def params(options: Iterable[Option], *, per_item: bool = False) -> Callable[[F], F]:
    """A decorator adding one click parameter per option (two for ``string_list``)."""
    decorators = [d for o in options for d in _decorators(o, per_item)]

    def apply(fn: F) -> F:
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn

    return apply


def _decorators(o: Option, per_item: bool) -> list[Callable[[Any], Any]]:
    if o.argument:
        return [click.argument(o.name, metavar=o.name.upper(), required=o.required)]
    names = [o.cli_flag, *([o.short] if o.short else []), o.name]
    help_text = o.help + (f" {FIELDS_HELP}" if per_item and o.per_item else "")
    if o.type == "boolean":
        if o.off_flag:
            return [click.option(f"{o.cli_flag}/{o.off_flag}", o.name, default=None, help=help_text)]
        return [click.option(*names, is_flag=True, default=bool(o.default), help=help_text)]
    if o.type == "string_list":
        return [
            click.option(*names, metavar="A,B,…", help=f"{help_text} Comma-separated."),
            click.option(
                f"{o.cli_flag}-file",
                f"{o.name}_file",
                type=click.Path(exists=True, dir_okay=False),
                help=f"A file with one per line, instead of {o.cli_flag}.",
            ),
        ]
    if o.type == "json_schema":
        path = click.Path(exists=True, dir_okay=False)
        return [click.option(*names, type=path, metavar="FILE", help=f"{help_text} (a JSON or JSON5 file)")]
    if o.type == "string_map":
        return [click.option(*names, multiple=True, metavar=o.metavar, help=f"{help_text} Repeatable.")]
    kind: Any = None
    if o.type == "integer":
        kind = click.IntRange(_int(o.minimum), _int(o.maximum))
    elif o.type == "number":
        kind = click.FloatRange(o.minimum, o.maximum)
    elif o.choices and o.type == "string":
        kind = click.Choice(list(o.choices))
    return [
        click.option(
            *names,
            type=kind,
            default=o.default,
            show_default=o.default is not None,
            required=o.required,
            metavar=o.metavar,
            help=help_text,
        )
    ]


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def values(options: Iterable[Option], raw: dict[str, Any]) -> dict[str, Any]:
    """Take the options' parameters out of a command's ``raw`` keyword arguments, as table values
    (``None`` for what was not given)."""
    out: dict[str, Any] = {}
    for o in options:
        value = raw.pop(o.name, None)
        if o.type == "string_list":
            out[o.name] = _listed(o, value, raw.pop(f"{o.name}_file", None))
        elif o.type == "json_schema":
            out[o.name] = _read_json(value) if value else None
        elif o.type == "string_map":
            out[o.name] = _pairs(value or ())
        else:
            out[o.name] = value
    return out


def _listed(o: Option, text: str | None, path: str | None) -> list[str] | None:
    if path:
        return [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    if text:
        return [x.strip() for x in text.split(",") if x.strip()]
    if o.required:
        raise click.UsageError(f"give the {o.name} with {o.cli_flag} a,b,c or {o.cli_flag}-file FILE")
    return None


def _read_json(path: str) -> Any:
    from offload.config import parse_json5

    return parse_json5(Path(path).read_text(encoding="utf-8"), Path(path))


def _pairs(items: Iterable[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--var expects KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


def given(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values actually given (``None`` dropped)."""
    return {k: v for k, v in values.items() if v is not None}
