"""Token estimates made before sending, when no tokenizer is at hand.

About 4 characters per token holds for English prose on common tokenizers; code, numbers and
non-Latin scripts run denser, so the estimate divides by a little less and adds a small
per-message overhead for chat templates. It errs on the high side: a pre-check that rejects a
prompt which would have fit is cheaper than a 500 from the server.
"""

from __future__ import annotations

from offload.types import ChatRequest

CHARS_PER_TOKEN = 3.5
PER_MESSAGE_OVERHEAD = 8
DEFAULT_MAX_OUTPUT = 1024


def estimate_tokens(text: str) -> int:
    """Rough token count of ``text`` (never below 1 for non-empty text)."""
    if not text:
        return 0
    return max(1, int(len(text) / CHARS_PER_TOKEN + 0.999))


def estimate_prompt(request: ChatRequest) -> int:
    """Rough input tokens of a request, template overhead included."""
    return sum(estimate_tokens(m.content) + PER_MESSAGE_OVERHEAD for m in request.messages)


def estimate_total(request: ChatRequest) -> int:
    """Input estimate plus the output budget (``max_output_tokens`` or a default)."""
    return estimate_prompt(request) + (request.max_output_tokens or DEFAULT_MAX_OUTPUT)
