"""User-defined tasks: template files in ``<config dir>/tasks/NAME.json5``, run with ``offload run NAME``.

A template names a system prompt, a user template with ``{variables}`` (``{text}`` is the main
input), the output kind (``text``, or ``json`` with a ``schema`` or a ``fields`` list), and
optionally its own model chain, gate and limits::

    {
      description: "Changelog entry from a diff",
      system: "You write concise changelog entries.",
      template: "Write a changelog entry for {audience} from this diff:\\n{text}",
      defaults: { audience: "users" },
      output: "text",
      model: { primary: "lmstudio/auto", fallbacks: ["anthropic/claude-haiku-4-5"] },
      gate: "checks", onFail: "escalate", maxOutputTokens: 300, temperature: 0.3,
    }
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offload.config import parse_json5
from offload.config_schema import Chain, Problems
from offload.errors import ConfigError, InputError
from offload.settings import config_dir
from offload.tasks.spec import TaskSpec
from offload.tasks.structured import check_schema, schema_from_fields
from offload.tasks.taskdef import GATES, ON_FAIL

VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Template:
    """A parsed template file."""

    name: str
    system: str
    template: str
    output: str = "text"
    schema: Mapping[str, Any] | None = None
    description: str = ""
    defaults: Mapping[str, str] = field(default_factory=dict)
    chain: Chain | None = None
    gate: str | None = None
    on_fail: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    path: Path | None = None

    @property
    def variables(self) -> list[str]:
        """Variable names used by the template, in order."""
        return list(dict.fromkeys(VAR.findall(self.template)))

    def spec(self, text: str, variables: Mapping[str, str]) -> TaskSpec:
        """The ``TaskSpec`` for one call; every variable must have a value."""
        values = {**self.defaults, **variables, "text": text}
        missing = [v for v in self.variables if v not in values]
        if missing:
            raise InputError(
                f"task {self.name!r} needs {', '.join(missing)}",
                remedy="pass " + " ".join(f"--var {m}=..." for m in missing),
            )
        prompt = VAR.sub(lambda m: str(values[m.group(1)]), self.template)
        return TaskSpec(
            name=self.name,
            system=self.system,
            prompt=prompt,
            output="json" if self.output == "json" else "text",
            schema=self.schema,
            source=text,
            max_output_tokens=self.max_output_tokens,
            temperature=self.temperature if self.temperature is not None else 0.2,
            render=_render if self.output == "json" else str,
        )


def _render(data: Any) -> str:
    import json

    return json.dumps(data, ensure_ascii=False, indent=2)


def tasks_dir(base: Path | None = None) -> Path:
    """Where template files live."""
    return (base or config_dir()) / "tasks"


def available(base: Path | None = None) -> list[str]:
    """Names of the templates present."""
    folder = tasks_dir(base)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.iterdir() if p.suffix in (".json5", ".json") and NAME.match(p.stem))


def load_template(name: str, base: Path | None = None) -> Template:
    """Read and validate ``<config dir>/tasks/NAME.json5`` (or ``.json``)."""
    from offload.tasks import BUILTIN_TASKS

    folder = tasks_dir(base)
    path = next(
        (folder / f"{name}{ext}" for ext in (".json5", ".json") if (folder / f"{name}{ext}").exists()), None
    )
    if not NAME.match(name) or path is None:
        known = available(base)
        hint = f"templates here: {', '.join(known)}" if known else f"create {folder / (name + '.json5')}"
        builtin = f" (built-in tasks are their own commands: {', '.join(BUILTIN_TASKS)})"
        raise InputError(f"no task template {name!r} in {folder}{builtin}", remedy=hint)
    raw = parse_json5(path.read_text(encoding="utf-8"), path)
    return parse_template(name, raw, path)


def parse_template(name: str, raw: Mapping[str, Any], path: Path | None = None) -> Template:
    """Validate a template document, reporting every problem with its key."""
    p = Problems()
    template = p.string(raw.get("template"), "template", required=True) or ""
    output = p.choice(raw.get("output", "text"), "output", ("text", "json")) or "text"
    schema: Mapping[str, Any] | None = None
    if output == "json":
        if "schema" in raw:
            schema = check_schema(raw["schema"], f"{path or name}: schema")
        elif isinstance(raw.get("fields"), str):
            schema = schema_from_fields(raw["fields"])
        else:
            p.note('output "json" needs a "schema" object or a "fields" list such as "name, age int"')
    defaults = p.obj(raw.get("defaults", {}), "defaults")
    result = Template(
        name=name,
        system=p.string(raw.get("system"), "system")
        or "You are a helpful assistant. Reply with the answer only.",
        template=template,
        output=output,
        schema=schema,
        description=p.string(raw.get("description"), "description") or "",
        defaults={k: str(v) for k, v in defaults.items()},
        chain=p.chain(raw["model"], "model") if "model" in raw else None,
        gate=p.choice(raw.get("gate"), "gate", GATES),
        on_fail=p.choice(raw.get("onFail"), "onFail", ON_FAIL),
        max_output_tokens=p.positive_int(raw.get("maxOutputTokens"), "maxOutputTokens"),
        temperature=p.number(raw.get("temperature"), "temperature"),
        path=path,
    )
    if template and "{text}" not in template:
        p.note("template: must contain {text}, where the input goes")
    if p.lines:
        raise ConfigError(f"invalid task template {path or name}:\n  " + "\n  ".join(p.lines))
    return result
