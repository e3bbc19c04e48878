"""Summaries of inputs longer than any model's context: split, summarize the parts, combine.

Nothing is ever silently truncated. The whole input is tried first; when the chain answers
with a context overflow (from the router's pre-check or from a server), the text is split on
paragraph, then sentence, boundaries into parts well inside the reported window, each part is
summarized, and the joined part-summaries are summarized again — recursively, a bounded
number of levels — into the requested length.
"""

from __future__ import annotations

import re
from dataclasses import replace

from offload.errors import AllCandidatesFailed, ContextOverflow, LocalOnlyRefused, OffloadError
from offload.tasks import builtin, checks, progress
from offload.tasks.runner import RunSettings, TaskResult, TaskRunner
from offload.tokens import CHARS_PER_TOKEN, estimate_tokens

MAX_LEVELS = 4
DEFAULT_WINDOW = 2048


async def summarize_text(
    runner: TaskRunner,
    text: str,
    length: str | int,
    focus: str | None,
    settings: RunSettings,
    level: int = 0,
    window: int | None = None,
) -> TaskResult:
    """Summarize ``text`` of any size (see the module docstring).

    ``window`` is the context learned from an earlier overflow: once known, each call's output
    reserve is capped to a quarter of it so prompt and answer fit together.
    """
    spec = builtin.summarize(text, length, focus=focus)
    if window is not None:
        spec = replace(spec, max_output_tokens=min(spec.max_output_tokens or window, output_cap(window)))
    try:
        return await runner.run(spec, settings)
    except (ContextOverflow, AllCandidatesFailed, LocalOnlyRefused) as exc:
        learned = overflow_window(exc)
        if learned is None:
            raise
        window = min(learned, window) if window else learned
    if level >= MAX_LEVELS:
        raise ContextOverflow(
            f"the input is still too long after {MAX_LEVELS} rounds of partial summaries",
            remedy="use a model with a larger context window",
        )
    parts = split_text(text, max_tokens=part_tokens(window))
    partials: list[TaskResult] = []
    for number, part in enumerate(parts, 1):
        progress.report(f"summary: part {number} of {len(parts)} (level {level + 1})")
        budget = max(15, checks.words(part) // 4)
        partials.append(await summarize_text(runner, part, budget, focus, settings, level + 1, window))
    combined = "\n\n".join(p.text for p in partials)
    progress.report(f"summary: combining {len(parts)} part summaries")
    final = await summarize_text(runner, combined, length, focus, settings, level + 1, window)
    return _merge(final, partials, len(parts))


def output_cap(window: int) -> int:
    """Tokens reserved for a summary's answer in a ``window``-token context."""
    return max(48, window // 4)


def part_tokens(window: int) -> int:
    """Largest part (estimated tokens) that fits with instructions and the answer reserve."""
    return max(64, int((window - output_cap(window)) * 0.6) - 60)


def overflow_window(exc: OffloadError) -> int | None:
    """The context window an overflow reported (a guess when the server did not say); ``None``
    when the error is not an overflow at all."""
    errors = list(exc.errors) if isinstance(exc, AllCandidatesFailed | LocalOnlyRefused) else [exc]
    overflows = [e for e in errors if isinstance(e, ContextOverflow)]
    if not overflows:
        return None
    known = [e.context_length for e in overflows if e.context_length]
    if known:
        return max(known)
    prompts = [e.prompt_tokens for e in overflows if e.prompt_tokens]
    return max(DEFAULT_WINDOW, max(prompts) // 4) if prompts else DEFAULT_WINDOW


def split_text(text: str, max_tokens: int) -> list[str]:
    """Parts of at most ``max_tokens`` (estimated), cut at paragraph or sentence boundaries."""
    limit = int(max_tokens * CHARS_PER_TOKEN)
    pieces: list[str] = []
    for para in re.split(r"\n\s*\n", text.strip()):
        if estimate_tokens(para) <= max_tokens:
            pieces.append(para)
            continue
        for sentence in re.split(r"(?<=[.!?])\s+", para):
            pieces += [sentence[i : i + limit] for i in range(0, len(sentence), limit)] or [sentence]
    parts: list[str] = []
    current = ""
    for piece in pieces:
        joined = f"{current}\n\n{piece}" if current else piece
        if current and estimate_tokens(joined) > max_tokens:
            parts.append(current)
            current = piece
        else:
            current = joined
    if current:
        parts.append(current)
    return parts


def _merge(final: TaskResult, partials: list[TaskResult], count: int) -> TaskResult:
    attempts = tuple(a for p in partials for a in p.attempts) + final.attempts
    escalations = tuple(e for p in partials for e in p.escalations) + final.escalations
    tokens_in = sum(p.usage.input_tokens for p in partials) + final.usage.input_tokens
    tokens_out = sum(p.usage.output_tokens for p in partials) + final.usage.output_tokens
    return replace(
        final,
        attempts=attempts,
        escalations=escalations,
        escalated=bool(escalations),
        usage=replace(final.usage, input_tokens=tokens_in, output_tokens=tokens_out),
        parts=count * max(1, final.parts),
    )
