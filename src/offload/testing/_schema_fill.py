"""A small JSON value valid against a JSON Schema: what every fake returns for structured output.

Handles objects, arrays, scalars, ``enum``/``const``, ``anyOf``/``oneOf``/``allOf``, local
``$ref``, numeric bounds, string lengths and common formats. Strings are built from the given
words (the request's input), so replies still depend on what was asked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def fill_schema(schema: Mapping[str, Any], words: Sequence[str] = ()) -> Any:
    """A value valid against simple JSON schemas (objects, arrays, scalars, enum/const, anyOf, local $ref)."""
    return _Filler(schema, list(words)).value(schema, "value", 0)


class _Filler:
    def __init__(self, root: Mapping[str, Any], words: list[str]) -> None:
        self.root = root
        self.words = words

    def value(self, schema: Mapping[str, Any], name: str, depth: int) -> Any:
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        for combinator in ("anyOf", "oneOf", "allOf"):
            options = [o for o in schema.get(combinator, []) if o.get("type") != "null"]
            if options:
                return self.value(options[0], name, depth)
        kind = self._type(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind in ("integer", "number"):
            return self._number(schema, kind)
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return self._string(schema, name)

    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return schema
        node: Any = self.root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        return node if isinstance(node, Mapping) else {}

    @staticmethod
    def _type(schema: Mapping[str, Any]) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if isinstance(kind, str):
            return kind
        if "properties" in schema:
            return "object"
        return "array" if "items" in schema else "string"

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        if depth > 8:
            return {}
        props = schema.get("properties", {})
        return {key: self.value(sub, key, depth + 1) for key, sub in props.items()}

    def _array(self, schema: Mapping[str, Any], name: str, depth: int) -> list[Any]:
        count = max(int(schema.get("minItems", 1)), 1)
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        items = schema.get("items", {})
        return [
            self.value(items if isinstance(items, Mapping) else {}, name, depth + 1) for _ in range(count)
        ]

    @staticmethod
    def _number(schema: Mapping[str, Any], kind: str) -> int | float:
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        value: float = 3
        if low is not None:
            value = max(value, low + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0))
        if high is not None:
            value = min(value, high - (1 if "exclusiveMaximum" in schema and "maximum" not in schema else 0))
        return int(value) if kind == "integer" else value

    def _string(self, schema: Mapping[str, Any], name: str) -> str:
        fmt = schema.get("format")
        formats = {"date": "2026-01-01", "date-time": "2026-01-01T00:00:00Z", "email": "user@example.com"}
        if fmt in formats:
            return formats[fmt]
        if fmt in ("uri", "url"):
            return "https://example.com/"
        text = " ".join(self.words[:3]) or name
        low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
        if len(text) < low:
            text = text.ljust(low, "x")
        return text[: int(high)] if high is not None else text
