"""Server-sent events: an incremental parser from byte chunks to events (no I/O, no HTTP library).

Follows the WHATWG event-stream rules that matter to model servers: lines end in LF, CRLF or a
lone CR (also when the two halves of a CRLF arrive in different chunks); ``data:`` lines of
one event are joined with newlines; a blank line dispatches; ``:`` starts a comment; one space
after the colon is dropped. ``offload.http.iter_sse`` feeds it a response's chunks.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One dispatched event: its ``event:`` name ("" when absent) and its data text."""

    event: str
    data: str


class SseParser:
    """Feed byte chunks in arrival order; get back the events they complete."""

    __slots__ = ("_data", "_decoder", "_event", "_pending")

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[RawEvent]:
        """The events that ``chunk`` completes (often none, sometimes several)."""
        text = self._pending + self._decoder.decode(chunk)
        half_crlf = text.endswith("\r")  # maybe the first half of a CRLF: decide on the next chunk
        if half_crlf:
            text = text[:-1]
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        self._pending = lines.pop() + ("\r" if half_crlf else "")
        return self._lines(lines) if lines else []

    def close(self) -> list[RawEvent]:
        """End of stream. Leniently, a last line without its newline still counts and an event
        without its closing blank line is still dispatched (some servers end that way)."""
        rest = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return self._lines([*rest.replace("\r\n", "\n").replace("\r", "\n").split("\n"), ""])

    def _lines(self, lines: list[str]) -> list[RawEvent]:
        events: list[RawEvent] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(RawEvent(self._event, "\n".join(self._data)))
                self._event, self._data = "", []
                continue
            if line[0] == ":":
                continue
            name, sep, value = line.partition(":")
            if sep and value[:1] == " ":
                value = value[1:]
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value
        return events
