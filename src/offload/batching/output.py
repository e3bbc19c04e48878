"""The batch output file: exactly one JSON line per input id, across crashes, kills and reruns.

Owns opening, locking, the resume scan, repair and appending.

Durability argument:

* A result is *committed* when its whole line (JSON + ``\\n``) reaches the file in one
  ``write()`` on an ``O_APPEND`` descriptor. Nothing else is ever written to the file, and a line
  is written only after its item finished, so a process killed at any instant (``kill -9``)
  leaves every earlier line intact and at most one incomplete tail — in practice none, since
  the kernel copies a regular-file ``write()`` in one piece before the process can die.
* Resume trusts only what is on disk: it reads the file, drops any bytes after the last
  newline (a torn tail), and treats every complete line with an ``id`` as done. Items are
  skipped by that set, so a rerun neither loses nor repeats an id.
* ``fsync`` runs at most once a second in a background thread and on close. It guards only
  against power loss or a kernel crash (a process kill never loses data the kernel accepted);
  whatever such a crash drops — a missing tail, or zeroed garbage lines — resume finds missing
  or unreadable and simply recomputes. Unreadable lines in the middle (or repeated ids, e.g.
  after hand edits) are repaired by an atomic rewrite: temp file, ``fsync``, ``rename``.
* One writer per file: an exclusive ``flock`` on the output itself, released by the kernel when
  the process dies, so a second batch on the same OUTPUT fails at once instead of interleaving.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offload.errors import InputError

SYNC_INTERVAL = 1.0


@dataclass
class Resume:
    """What the output already holds."""

    done: set[str] = field(default_factory=set)
    """Keys of ids with a line (successful or failed)."""
    failed: dict[str, str] = field(default_factory=dict)
    """Key → error kind, for lines that carry an error."""
    notes: list[str] = field(default_factory=list)
    """What the scan fixed (a torn tail, unreadable lines), for the user."""


def encode(row: dict[str, Any]) -> bytes:
    """One output line: compact JSON (newlines inside strings are escaped) plus ``\\n``."""
    return (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def _key(raw: bytes) -> tuple[str, str | None] | None:
    """(id key, error kind or None) of a complete line; ``None`` when the line is unusable."""
    try:
        row = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(row, dict):
        return None
    item_id = row.get("id")
    if isinstance(item_id, bool) or not isinstance(item_id, str | int):
        return None
    error = row.get("error")
    kind = None
    if error is not None:
        kind = str(error.get("kind", "error")) if isinstance(error, dict) else "error"
    return str(item_id), kind


class OutputLog:
    """The append-only output of one batch run (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, retry_failed: bool = False) -> None:
        self.path = Path(path).expanduser()
        self.retry_failed = retry_failed
        self._fd: int | None = None
        self._dirty = False
        self._syncer: asyncio.Task[None] | None = None
        self.written = 0

    # --- opening ------------------------------------------------------------------------------

    def open(self) -> Resume:
        """Lock the file, scan it, repair it if needed, and get ready to append."""
        if self.path.is_dir():
            raise InputError(f"the output {self.path} is a directory", remedy="give a file path with -o")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise InputError(f"cannot open the output {self.path}: {exc.strerror or exc}") from exc
        self._lock(fd)
        self._fd = fd
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):  # a rewrite cut short by a kill
            with contextlib.suppress(OSError):
                stale.unlink()
        resume, keep, rewrite = self._scan(fd)
        if rewrite:
            self._rewrite(keep)
        return resume

    def _lock(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(
                f"another offload batch is writing {self.path}",
                remedy="wait for it to finish, or choose another -o file",
            ) from None

    def _scan(self, fd: int) -> tuple[Resume, list[bytes], bool]:
        resume = Resume()
        data = b""
        with os.fdopen(os.dup(fd), "rb") as handle:
            handle.seek(0)
            data = handle.read()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            os.ftruncate(fd, end)
            resume.notes.append(f"dropped a half-written last line ({len(data) - end} bytes)")
            data = data[:end]
        keep: list[bytes] = []
        bad = dropped = repeats = 0
        for raw in data.splitlines(keepends=True):
            if not raw.strip():
                bad += 1
                continue
            parsed = _key(raw)
            if parsed is None:
                bad += 1
                continue
            key, kind = parsed
            if key in resume.done:
                repeats += 1
                continue
            if kind is not None and self.retry_failed:
                dropped += 1
                continue
            resume.done.add(key)
            if kind is not None:
                resume.failed[key] = kind
            keep.append(raw)
        if bad:
            resume.notes.append(f"removed {bad} unreadable line(s); their items run again")
        if repeats:
            resume.notes.append(f"removed {repeats} repeated id line(s) (the first was kept)")
        if dropped:
            resume.notes.append(f"removed {dropped} failed item(s) to run them again (--retry-failed)")
        return resume, keep, bool(bad or repeats or dropped)

    def _rewrite(self, keep: list[bytes]) -> None:
        """Atomically replace the file with ``keep`` (the lock moves to the new file first)."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _write_all(fd, b"".join(keep))
            os.fsync(fd)
            os.replace(tmp, self.path)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        _sync_dir(self.path.parent)
        old, self._fd = self._fd, fd
        if old is not None:
            os.close(old)

    # --- appending ----------------------------------------------------------------------------

    def append(self, row: dict[str, Any]) -> None:
        """Commit one finished item (one ``write()`` of one whole line)."""
        if self._fd is None:
            raise RuntimeError("OutputLog.append before open()")
        _write_all(self._fd, encode(row))
        self.written += 1
        self._dirty = True
        if self._syncer is None:
            with contextlib.suppress(RuntimeError):  # no running loop: sync on close only
                self._syncer = asyncio.get_running_loop().create_task(self._sync_loop())

    async def _sync_loop(self) -> None:
        while self._fd is not None:
            await asyncio.sleep(SYNC_INTERVAL)
            fd = self._fd
            if self._dirty and fd is not None:
                self._dirty = False
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(os.fsync, fd)

    async def aclose(self) -> None:
        """Stop the syncer, then ``close()``."""
        if self._syncer is not None:
            self._syncer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._syncer
            self._syncer = None
        self.close()

    def close(self) -> None:
        """Flush to disk and release the lock."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.fsync(fd)
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _sync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete, readable line of an output file (for tools and tests)."""
    rows: list[dict[str, Any]] = []
    data = Path(path).read_bytes()
    for raw in data[: data.rfind(b"\n") + 1].splitlines():
        with contextlib.suppress(ValueError):
            row = json.loads(raw)
            if isinstance(row, dict):
                rows.append(row)
    return rows
