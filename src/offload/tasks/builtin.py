"""The built-in tasks as ``TaskSpec`` builders: summarize, extract, classify, rewrite, review,
brainstorm, translate, and ``ask`` (a raw prompt). Which options each takes is declared in
``offload.tasks.table``; these functions turn them into a ``TaskSpec``. Prompts are short and
explicit because the models they target are small."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from offload.errors import InputError
from offload.tasks import checks
from offload.tasks.spec import TaskSpec
from offload.tasks.structured import check_schema, normalize_label, schema_from_fields

LENGTHS = ("sentence", "paragraph", "bullets")
SEVERITIES = ["info", "minor", "major", "critical"]


def _quoted(text: str) -> str:
    return f"<<<\n{text.strip()}\n>>>"


# --- summarize --------------------------------------------------------------------------------


def summarize(text: str, length: str | int = "paragraph", *, focus: str | None = None) -> TaskSpec:
    """Summarize ``text``: a sentence, a paragraph, bullets, or at most N words."""
    if isinstance(length, int):
        if length < 5:
            raise InputError(f"a word budget of {length} is too small", remedy="use at least 5 words")
        how, limit = f"in at most {length} words", length
    elif length in LENGTHS:
        how = {
            "sentence": "in one sentence",
            "paragraph": "in one short paragraph",
            "bullets": "as 3 to 7 bullet points, one per line starting with '- '",
        }[length]
        limit = {"sentence": 60, "paragraph": 220, "bullets": 250}[length]
    else:
        raise InputError(
            f"unknown summary length {length!r}", remedy="use sentence, paragraph, bullets or a number"
        )
    focus_line = f" Focus on: {focus}." if focus else ""
    source_words = checks.words(text)
    text_checks: list[Callable[[str], str | None]] = [lambda t: checks.too_long(t, int(limit * 1.3) + 5)]
    if source_words > 40:
        text_checks.append(lambda t: _shorter(t, source_words))
    if length == "bullets":
        text_checks.append(_has_bullets)
    return TaskSpec(
        name="summarize",
        system="You summarize text faithfully and concisely. Use only facts stated in the text. "
        "Reply with the summary only, no preamble.",
        prompt=f"Summarize the text below {how}.{focus_line}\n\n{_quoted(text)}",
        source=text,
        max_output_tokens=int(limit * 2) + 20,
        text_checks=tuple(text_checks),
        rubric="Is the summary faithful to the text (no invented facts), complete on the main points, "
        "and concise?",
        meta={"length": length},
    )


def _shorter(summary: str, source_words: int) -> str | None:
    n = checks.words(summary)
    return (
        f"the summary ({n} words) is not shorter than the input ({source_words} words)"
        if n >= source_words
        else None
    )


def _has_bullets(text: str) -> str | None:
    lines = [ln for ln in text.splitlines() if re.match(r"^\s*([-*•]|\d+[.)])\s+", ln)]
    return None if len(lines) >= 2 else "the summary is not a list of bullet points"


# --- extract ---------------------------------------------------------------------------------


def extract(text: str, schema: Mapping[str, Any] | None = None, fields: str | None = None) -> TaskSpec:
    """Extract fields from ``text`` as JSON that validates against ``schema`` (or a ``fields`` list)."""
    if (schema is None) == (fields is None):
        raise InputError(
            "give either a JSON Schema or a field list", remedy="--schema FILE or --fields 'a, b int'"
        )
    schema = check_schema(dict(schema), "schema") if schema is not None else schema_from_fields(fields or "")
    return TaskSpec(
        name="extract",
        system="You extract structured data from text. Reply with one JSON object only. "
        "Use null for a field the text does not give; never invent values.",
        prompt=f"JSON Schema of the answer:\n{json.dumps(schema)}\n\nText:\n{_quoted(text)}",
        output="json",
        schema=schema,
        source=text,
        max_output_tokens=512,
        temperature=0.0,
        render=lambda data: json.dumps(data, ensure_ascii=False, indent=2),
        rubric="Are the extracted values exactly supported by the text, with nothing invented or missed?",
    )


# --- classify --------------------------------------------------------------------------------


def classify(
    text: str,
    labels: Sequence[str],
    *,
    multi: bool = False,
    confidence: bool = False,
    instructions: str | None = None,
) -> TaskSpec:
    """Pick one label (or several with ``multi``) from ``labels``; optionally with a confidence."""
    labels = [label.strip() for label in labels if label.strip()]
    if len(labels) < 2:
        raise InputError(
            "classification needs at least two labels", remedy="e.g. --labels bug,feature,question"
        )
    props: dict[str, Any] = (
        {"labels": {"type": "array", "items": {"enum": labels}, "minItems": 1, "uniqueItems": True}}
        if multi
        else {"label": {"enum": labels}}
    )
    if confidence:
        props["confidence"] = {"type": "number", "minimum": 0, "maximum": 1}
    schema = {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}
    key = "labels" if multi else "label"
    pick = "one or more of these labels" if multi else "exactly one of these labels"
    extra = f"\n{instructions}" if instructions else ""
    conf = ' and "confidence" (0 to 1, how sure you are)' if confidence else ""
    return TaskSpec(
        name="classify",
        system="You classify text. Reply with one JSON object only.",
        prompt=f"Classify the text with {pick}: {', '.join(labels)}.{extra}\n"
        f'Answer as JSON with "{key}"{conf}.\n\nText:\n{_quoted(text)}',
        output="json",
        schema=schema,
        source=text,
        max_output_tokens=100,
        temperature=0.0,
        post=lambda data: _normalize_labels(data, labels, key),
        render=_render_label,
        rubric="Is the chosen label the right one for this text?",
        meta={"labels": labels, "multi": multi},
    )


def _normalize_labels(data: Any, labels: Sequence[str], key: str) -> Any:
    if not isinstance(data, dict):
        return data
    if isinstance(data.get("label"), str) and key == "label":
        data["label"] = normalize_label(data["label"], labels) or data["label"]
    if isinstance(data.get("labels"), list):
        data["labels"] = [normalize_label(v, labels) or v for v in data["labels"]]
    return data


def _render_label(data: Any) -> str:
    if not isinstance(data, dict):
        return str(data)
    value = data.get("label") if "label" in data else ", ".join(map(str, data.get("labels", [])))
    conf = data.get("confidence")
    return f"{value} ({conf:.2f})" if isinstance(conf, int | float) else str(value)


# --- rewrite / translate ---------------------------------------------------------------------


def rewrite(text: str, instruction: str) -> TaskSpec:
    """Rewrite ``text`` as ``instruction`` says (tone, audience, length…)."""
    if not instruction.strip():
        raise InputError("rewrite needs an instruction", remedy='e.g. --how "friendlier, for customers"')
    source_words = checks.words(text)
    return TaskSpec(
        name="rewrite",
        system="You rewrite text as instructed, keeping its meaning and facts. "
        "Reply with the rewritten text only.",
        prompt=f"Rewrite the text below: {instruction.strip()}\n\n{_quoted(text)}",
        source=text,
        max_output_tokens=max(256, source_words * 3),
        temperature=0.4,
        text_checks=(
            lambda t: "the rewrite is identical to the input" if t.strip() == text.strip() else None,
        ),
        rubric=f"Does the rewrite follow the instruction ({instruction}) while keeping the meaning?",
    )


def translate(text: str, target: str, *, source_language: str | None = None) -> TaskSpec:
    """Translate ``text`` into ``target`` (a language name or code)."""
    if not target.strip():
        raise InputError("translate needs a target language", remedy="e.g. --to German")
    origin = f" from {source_language}" if source_language else ""
    return TaskSpec(
        name="translate",
        system="You are a translator. Reply with the translation only: "
        "no notes, no quotes, no original text.",
        prompt=f"Translate the text below{origin} into {target}.\n\n{_quoted(text)}",
        source=text,
        max_output_tokens=max(256, checks.words(text) * 4),
        temperature=0.1,
        text_checks=(lambda t: checks.wrong_language(t, target),),
        rubric=f"Is this an accurate, fluent {target} translation of the text?",
        meta={"target": target},
    )


# --- review ----------------------------------------------------------------------------------

REVIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "location": {"type": "string"},
                    "severity": {"enum": SEVERITIES},
                    "message": {"type": "string"},
                },
                "required": ["location", "severity", "message"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["summary", "findings"],
    "additionalProperties": False,
}


def review(text: str, *, focus: str | None = None, kind: str = "code") -> TaskSpec:
    """A first-pass review of a diff or file: a short summary and structured findings."""
    focus_line = f"\nFocus on: {focus}." if focus else ""
    return TaskSpec(
        name="review",
        system="You are a careful reviewer doing a first pass. Report real problems only (bugs, risks, "
        "unclear parts), each with where it is. Reply with one JSON object only.",
        prompt=f"Review this {kind}.{focus_line}\nAnswer as JSON: "
        '{"summary": "two sentences", "findings": [{"location": "file:line or section", '
        '"severity": "info|minor|major|critical", "message": "..."}]}.\n\n' + _quoted(text),
        output="json",
        schema=REVIEW_SCHEMA,
        source=text,
        max_output_tokens=1024,
        temperature=0.1,
        render=_render_review,
        rubric="Are the findings real, correctly located and useful, with nothing important missed?",
    )


def _render_review(data: Any) -> str:
    if not isinstance(data, dict):
        return str(data)
    lines = [str(data.get("summary", "")).strip()]
    for f in data.get("findings", []):
        lines.append(f"- [{f.get('severity')}] {f.get('location')}: {f.get('message')}")
    return "\n".join(lines)


# --- brainstorm ------------------------------------------------------------------------------


def brainstorm(topic: str, count: int = 5) -> TaskSpec:
    """``count`` distinct ideas on ``topic``; near-duplicates are removed."""
    if not 1 <= count <= 50:
        raise InputError(f"cannot brainstorm {count} ideas", remedy="ask for 1 to 50")
    schema = {
        "type": "object",
        "properties": {"ideas": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
        "required": ["ideas"],
        "additionalProperties": False,
    }
    ask = count + 2  # a little extra: near-duplicates are dropped afterwards
    return TaskSpec(
        name="brainstorm",
        system="You brainstorm varied, concrete ideas. Each idea is one short sentence and differs from the "
        "others. Reply with one JSON object only.",
        prompt=f'Give {ask} distinct ideas for: {topic.strip()}\nAnswer as JSON: {{"ideas": ["...", "..."]}}',
        output="json",
        schema=schema,
        source=topic,
        max_output_tokens=60 * ask + 40,
        temperature=0.8,
        post=lambda data: _dedupe(data, count),
        data_checks=(lambda data: _enough(data, count),),
        render=lambda data: "\n".join(f"{i}. {idea}" for i, idea in enumerate(data.get("ideas", []), 1)),
        rubric="Are the ideas relevant, concrete and genuinely different from each other?",
        meta={"count": count},
    )


def _dedupe(data: Any, count: int) -> Any:
    if isinstance(data, dict) and isinstance(data.get("ideas"), list):
        ideas = [str(i) for i in data["ideas"] if isinstance(i, str)]
        data["ideas"] = checks.distinct(ideas)[:count]
    return data


def _enough(data: Any, count: int) -> str | None:
    got = len(data.get("ideas", [])) if isinstance(data, dict) else 0
    return None if got >= count else f"only {got} distinct ideas, {count} were asked for"


# --- ask -------------------------------------------------------------------------------------


def ask(
    text: str,
    *,
    system: str | None = None,
    max_output_tokens: int | None = None,
    temperature: float | None = None,
    schema: Mapping[str, Any] | None = None,
) -> TaskSpec:
    """A raw prompt; with ``schema`` the answer is JSON valid against it."""
    if not text.strip():
        raise InputError("the prompt is empty", remedy="give the text to ask about")
    if schema is not None:
        schema = check_schema(dict(schema), "schema")
    return TaskSpec(
        name="ask",
        system=system or "You are a helpful assistant.",
        prompt=text,
        output="json" if schema is not None else "text",
        schema=schema,
        source="",
        max_output_tokens=max_output_tokens,
        temperature=temperature,
        render=str if schema is None else _dumps,
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
