"""Choosing a model when the caller names none: by need first, then loaded state, then size.

1. Need: an LLM (never an embedding model), vision when the request carries images, and a
   context that holds the estimated prompt plus the output budget — the *loaded* context for a
   loaded model (a loaded instance is not reloaded), the trained maximum for an unloaded one.
2. Loaded before unloaded (no load wait, no memory churn).
3. Smaller first for ``prefer="fast"``, larger first for ``prefer="quality"``.

``choose`` returns the pick with the reasons, so ``--verbose`` can explain it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from offload.errors import ModelNotFound
from offload.tokens import estimate_prompt
from offload.types import ChatRequest, ModelInfo

Prefer = Literal["fast", "quality"]
JIT_DEFAULT_CONTEXT = 4096
"""Context LM Studio gives a JIT load when the request names none (conservative)."""


@dataclass(frozen=True, slots=True)
class Need:
    """What a request requires of a model."""

    tokens: int
    vision: bool = False

    @classmethod
    def of(cls, request: ChatRequest, max_output: int) -> Need:
        """The need of ``request`` with ``max_output`` tokens reserved for the answer."""
        return cls(tokens=estimate_prompt(request) + max_output, vision=request.has_images)


@dataclass(frozen=True, slots=True)
class Choice:
    """The chosen model, the context to request if it must load, and why."""

    model: ModelInfo
    context_length: int | None
    reasons: tuple[str, ...]


def size_of(model: ModelInfo) -> float:
    """A comparable size: bytes on disk, else parameters from the params string, else 0."""
    if model.size_bytes:
        return float(model.size_bytes)
    match = re.match(r"(\d+(?:\.\d+)?)\s*([KMBT])", (model.params_string or "").upper())
    if not match:
        return 0.0
    scale = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}[match.group(2)]
    return float(match.group(1)) * scale


def _misfit(model: ModelInfo, need: Need) -> str | None:
    if not model.is_llm:
        return "embedding model"
    if need.vision and not model.vision:
        return "no vision"
    window = model.loaded_context_length if model.loaded else model.max_context_length
    if window is not None and window < need.tokens:
        state = "loaded with" if model.loaded else "max"
        return f"context {state} {window} < ~{need.tokens} tokens needed"
    return None


def _context_for(model: ModelInfo, need: Need) -> int | None:
    if model.loaded or need.tokens <= JIT_DEFAULT_CONTEXT:
        return None
    wanted = 1 << (need.tokens - 1).bit_length()
    return min(wanted, model.max_context_length or wanted)


def choose(models: Sequence[ModelInfo], need: Need, prefer: Prefer = "fast") -> Choice:
    """Pick the best model for ``need``; raise ``ModelNotFound`` listing why none fits."""
    fits: list[ModelInfo] = []
    rejected: list[str] = []
    for model in models:
        why = _misfit(model, need)
        if why:
            rejected.append(f"{model.key}: {why}")
        else:
            fits.append(model)
    if not fits:
        listing = "; ".join(rejected) or "no models downloaded"
        wanted = f"~{need.tokens} tokens" + (", vision" if need.vision else "")
        raise ModelNotFound(
            f"no model fits this request ({wanted}): {listing}",
            remedy="download a suitable model, load one with a larger --context-length, or shorten the input",
        )
    sign = 1 if prefer == "fast" else -1
    fits.sort(key=lambda m: (not m.loaded, sign * size_of(m), m.key))
    pick = fits[0]
    reasons = [
        f"fits ~{need.tokens} tokens" + (" with vision" if need.vision else ""),
        "already loaded" if pick.loaded else "not loaded: the first call loads it (JIT)",
        ("smallest" if prefer == "fast" else "largest")
        + f" of {sum(1 for m in fits if m.loaded == pick.loaded)} "
        + ("loaded" if pick.loaded else "downloaded")
        + " candidates"
        + f" (--prefer {prefer})",
    ]
    reasons += [f"skipped {r}" for r in rejected]
    return Choice(pick, _context_for(pick, need), tuple(reasons))
