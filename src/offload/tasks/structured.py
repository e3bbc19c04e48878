"""Structured output helpers: field lists to JSON Schema, fence stripping, cheap repair, validation.

Small local models often wrap JSON in markdown fences, add a sentence before or after it,
leave a trailing comma, or use single quotes. ``parse_json`` undoes exactly those, nothing
cleverer; ``validate`` then checks the result against the schema and returns readable
problems that can be sent back to the model in a re-ask.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from offload.errors import InputError

FIELD_TYPES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "string": {"type": "string"},
    "text": {"type": "string"},
    "int": {"type": "integer"},
    "integer": {"type": "integer"},
    "float": {"type": "number"},
    "number": {"type": "number"},
    "bool": {"type": "boolean"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "description": "ISO 8601 date (YYYY-MM-DD)"},
    "list": {"type": "array", "items": {"type": "string"}},
    "list[str]": {"type": "array", "items": {"type": "string"}},
    "list[int]": {"type": "array", "items": {"type": "integer"}},
    "list[float]": {"type": "array", "items": {"type": "number"}},
}
FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\s*[: ]\s*([A-Za-z\[\]]+))?$")
FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def schema_from_fields(spec: str) -> dict[str, Any]:
    """``"name, age int, tags list"`` → a JSON Schema object (every field required, nullable).

    Types: str (default), int, float, bool, date, list (of strings), list[int], list[float].
    """
    properties: dict[str, Any] = {}
    for raw in (part.strip() for part in spec.split(",")):
        if not raw:
            continue
        match = FIELD.match(raw)
        kind = (match.group(2) or "str").lower() if match else None
        if match is None or kind not in FIELD_TYPES:
            known = ", ".join(sorted({k for k in FIELD_TYPES if "[" not in k}))
            raise InputError(
                f"cannot read field {raw!r} in {spec!r}",
                remedy=f"write fields as 'name type' separated by commas; types: {known}, list[int]",
            )
        base = dict(FIELD_TYPES[kind])
        base["type"] = [base["type"], "null"]
        properties[match.group(1)] = base
    if not properties:
        raise InputError("the field list is empty", remedy="e.g. --fields 'name, age int, tags list'")
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def parse_json(text: str) -> Any:
    """Parse model output as JSON, undoing fences, surrounding prose and trivial breakage.

    Raises ``ValueError`` with the parser's message when nothing parses.
    """
    candidates = [text.strip()]
    fenced = FENCE.search(text)
    if fenced:
        candidates.insert(0, fenced.group(1).strip())
    span = _outer_span(text)
    if span:
        candidates.append(span)
    last: Exception | None = None
    for candidate in candidates:
        for variant in (candidate, _repair(candidate)):
            try:
                return json.loads(variant)
            except json.JSONDecodeError as exc:
                last = exc
    raise ValueError(f"not valid JSON ({last})")


def _outer_span(text: str) -> str | None:
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        return None
    start = min(starts)
    end = max(text.rfind("}"), text.rfind("]"))
    return text[start : end + 1] if end > start else None


def _repair(text: str) -> str:
    fixed = re.sub(r",\s*([}\]])", r"\1", text)  # trailing commas
    if "'" in fixed and '"' not in fixed:
        fixed = fixed.replace("'", '"')
    fixed = re.sub(r"\bTrue\b", "true", fixed)
    fixed = re.sub(r"\bFalse\b", "false", fixed)
    return re.sub(r"\bNone\b", "null", fixed)


def validate(value: Any, schema: Mapping[str, Any]) -> list[str]:
    """Schema problems as short readable lines (empty when ``value`` is valid)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(dict(schema))
    problems = []
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        problems.append(f"{where}: {error.message}")
    return problems


_VALID_SCHEMAS: set[str] = set()


def check_schema(schema: Any, source: str) -> dict[str, Any]:
    """Make sure a user-supplied schema is a valid JSON Schema object.

    Checking costs milliseconds, so schemas already found valid are remembered (a batch builds
    the same schema into every item's request).
    """
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, dict):
        raise InputError(f"{source}: a JSON Schema must be an object, got {type(schema).__name__}")
    key = json.dumps(schema, sort_keys=True, default=repr)
    if key in _VALID_SCHEMAS:
        return schema
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InputError(f"{source}: invalid JSON Schema: {exc.message}") from exc
    if len(_VALID_SCHEMAS) < 256:
        _VALID_SCHEMAS.add(key)
    return schema


def normalize_label(value: Any, labels: Sequence[str]) -> str | None:
    """The label ``value`` names, matched case- and punctuation-insensitively; ``None`` if none."""
    if not isinstance(value, str):
        return None
    key = re.sub(r"[^a-z0-9]+", "", value.lower())
    for label in labels:
        if re.sub(r"[^a-z0-9]+", "", label.lower()) == key:
            return label
    return None
