"""Text handling for the embedded provider: ``<think>`` splitting and chat-message building.

The splitter works on a stream of fragments (tags may be cut anywhere) and is also used for
whole answers by feeding them in one piece, so ``chat`` and ``stream_chat`` agree exactly: the
final content is always the concatenation of the emitted ``TextDelta`` texts.
"""

from __future__ import annotations

from offload.types import ChatRequest, ReasoningDelta, TextDelta

OPEN, CLOSE = "<think>", "</think>"
Delta = TextDelta | ReasoningDelta


def _held_back(buf: str, tags: tuple[str, ...]) -> int:
    """Length of the longest suffix of ``buf`` that could start one of ``tags``."""
    best = 0
    for tag in tags:
        for size in range(min(len(tag) - 1, len(buf)), best, -1):
            if buf.endswith(tag[:size]):
                best = size
                break
    return best


class ThinkSplitter:
    """Routes ``<think>…</think>`` to reasoning and everything else to content.

    ``in_reasoning`` starts inside a think block (for chat templates that open ``<think>`` in
    the prompt). A stray ``</think>`` in content is dropped; leading whitespace of the content
    and of the reasoning is skipped.
    """

    def __init__(self, *, in_reasoning: bool = False) -> None:
        self.in_reasoning = in_reasoning
        self._buf = ""
        self._started = {True: False, False: False}

    def feed(self, text: str) -> list[Delta]:
        """Split one fragment; may hold back a few characters that could begin a tag."""
        self._buf += text
        out: list[Delta] = []
        while True:
            tags = (CLOSE,) if self.in_reasoning else (OPEN, CLOSE)
            hits = [(self._buf.find(t), t) for t in tags if t in self._buf]
            if not hits:
                break
            index, tag = min(hits)
            self._emit(self._buf[:index], out)
            self._buf = self._buf[index + len(tag) :]
            self.in_reasoning = tag == OPEN
        keep = _held_back(self._buf, (CLOSE,) if self.in_reasoning else (OPEN, CLOSE))
        self._emit(self._buf[: len(self._buf) - keep], out)
        self._buf = self._buf[len(self._buf) - keep :]
        return out

    def flush(self) -> list[Delta]:
        """Emit whatever is held back (the stream has ended)."""
        out: list[Delta] = []
        self._emit(self._buf, out)
        self._buf = ""
        return out

    def _emit(self, text: str, out: list[Delta]) -> None:
        if not self._started[self.in_reasoning]:
            text = text.lstrip()
        if not text:
            return
        self._started[self.in_reasoning] = True
        out.append(ReasoningDelta(text) if self.in_reasoning else TextDelta(text))


def split_think(text: str, *, in_reasoning: bool = False) -> tuple[str, str]:
    """``(content, reasoning)`` of a whole answer."""
    splitter = ThinkSplitter(in_reasoning=in_reasoning)
    deltas = splitter.feed(text) + splitter.flush()
    content = "".join(d.text for d in deltas if isinstance(d, TextDelta))
    reasoning = "".join(d.text for d in deltas if isinstance(d, ReasoningDelta))
    return content, reasoning


def opens_thinking(prompt: str) -> bool:
    """True when a rendered prompt ends inside an open ``<think>`` block."""
    return prompt.rstrip().endswith(OPEN)


def chat_messages(request: ChatRequest, *, fold_system: bool = False) -> list[dict[str, str]]:
    """The request as llama.cpp chat messages.

    ``fold_system`` puts the system prompt in front of the first user turn, for chat formats
    (Gemma) that silently drop system messages.
    """
    if not fold_system or request.system is None:
        return [{"role": m.role, "content": m.content} for m in request.messages]
    turns = [{"role": m.role, "content": m.content} for m in request.turns]
    first_user = next((t for t in turns if t["role"] == "user"), None)
    if first_user is None:
        return [{"role": "user", "content": request.system}, *turns]
    first_user["content"] = f"{request.system}\n\n{first_user['content']}"
    return turns
