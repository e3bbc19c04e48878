"""The batch output file: exactly one JSON line per input id, across crashes, kills and reruns.

Owns opening, locking, the resume scan, repair and appending, and what offload may append to.

Whose file it is:

* Only a regular file is ever opened (a device, FIFO or directory is refused before anything
  is read); ``-`` streams the lines to stdout instead, with no resume.
* offload appends only to a file that is missing, empty, or recognisably its own output: every
  line is one of offload's result rows — a JSON object with ``id``, ``output``, ``model``,
  ``tokens`` and ``error`` (``null`` or an object), written compactly with ``id`` first, which
  every offload version has written. Any other line (a note, a CSV row, another dataset's
  ``{"id": …}``) refuses the run, naming the file and line, and the file is left untouched.
* The only lines it may cut are its own damage: a torn last line, a torn line of its own in the
  middle (``{"id":`` but not JSON), lines of NUL bytes (a crash zeroed them), blank lines, and
  a repeated id (the first is kept).

Durability argument:

* A result is *committed* when its whole line (JSON + ``\\n``) reaches the file in one
  ``write()`` on an ``O_APPEND`` descriptor. Nothing else is ever written to the file, and a line
  is written only after its item finished, so a process killed at any instant (``kill -9``)
  leaves every earlier line intact and at most one incomplete tail — in practice none, since
  the kernel copies a regular-file ``write()`` in one piece before the process can die.
* A write that fails (disk full, I/O error) is cut back to the last whole line and stops the
  run with ``OutputFailed``; a rerun resumes exactly.
* Resume trusts only what is on disk: it reads the file, drops a torn tail, and treats every
  complete row as done. Items are skipped by that set, so a rerun neither loses nor repeats an id.
* ``fsync`` runs at most once a second in a background thread and on close. It guards only
  against power loss or a kernel crash (a process kill never loses data the kernel accepted);
  whatever such a crash drops — a missing tail, or zeroed garbage lines — resume finds missing
  or unreadable and simply recomputes. Damage in the middle (or repeated ids, e.g. after hand
  edits) is repaired by an atomic rewrite: temp file, ``fsync``, ``rename``.
* One writer per file: an exclusive ``flock`` on the output itself, released by the kernel when
  the process dies, so a second batch on the same OUTPUT fails at once instead of interleaving.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offload.errors import InputError, OffloadError

SYNC_INTERVAL = 1.0
STDOUT = "-"
"""The output name that streams result lines to stdout (no resume, no lock)."""
OWN_PREFIX = b'{"id":'
"""How every line offload writes begins (``encode`` puts ``id`` first, compactly)."""
ROW_FIELDS = ("id", "output", "model", "tokens", "error")
"""The fields every offload result row has: the format marker of its own output."""


class OutputFailed(OffloadError):
    """The output could not be written (disk full, closed pipe, I/O error); the run stops."""

    kind = "output"


@dataclass
class Resume:
    """What the output already holds."""

    done: set[str] = field(default_factory=set)
    """Keys of ids with a line (successful or failed)."""
    failed: dict[str, str] = field(default_factory=dict)
    """Key → error kind, for lines that carry an error."""
    notes: list[str] = field(default_factory=list)
    """What the scan fixed (a torn tail, unreadable lines), for the user."""


@dataclass
class Scan:
    """The verdict on an output's bytes: what is done, what to keep, whether to rewrite."""

    resume: Resume
    keep: list[bytes]
    end: int
    """Length of the file without its torn tail."""
    rewrite: bool
    foreign: str | None = None
    """Why the file is not offload's own output (``None`` when it is)."""


def encode(row: dict[str, Any]) -> bytes:
    """One output line: compact JSON with ``id`` first (newlines in strings escaped) plus ``\\n``."""
    ordered = {"id": row.get("id"), **row}
    return (json.dumps(ordered, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def own_row(row: object) -> bool:
    """True when ``row`` has the shape of an offload result row (see the module docstring)."""
    if not isinstance(row, dict) or any(name not in row for name in ROW_FIELDS):
        return False
    item_id, error = row["id"], row["error"]
    if isinstance(item_id, bool) or not isinstance(item_id, str | int):
        return False
    return isinstance(row["tokens"], dict) and (error is None or isinstance(error, dict))


def _damage(raw: bytes) -> bool:
    """A line offload may cut: NUL bytes only (a crash zeroed it), or a torn line of its own."""
    body = raw.strip()
    if not body.strip(b"\x00"):
        return True
    if not body.startswith(OWN_PREFIX):
        return False
    try:
        json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return True
    return False


def _torn_tail(tail: bytes) -> bool:
    """True when the bytes after the last newline are an unfinished line of offload's own."""
    body = tail.lstrip()
    if not body.strip(b"\x00"):
        return True
    if not (body.startswith(OWN_PREFIX) or OWN_PREFIX.startswith(body)):
        return False
    try:
        row = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return True
    return own_row(row)


def _what(raw: bytes) -> str:
    """What a foreign line is, without quoting it (it may hold anything)."""
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return "not a JSON line"
    if isinstance(value, dict):
        return "a JSON object without offload's result fields (id, output, model, tokens, error)"
    return f"a JSON {type(value).__name__}, not an offload result row"


def scan(data: bytes, *, retry_failed: bool = False) -> Scan:
    """Read an output's bytes: what is done, what to keep, and whether it is offload's at all."""
    resume = Resume()
    end = data.rfind(b"\n") + 1
    tail = data[end:]
    if tail and not _torn_tail(tail):
        line = data.count(b"\n") + 1
        return Scan(resume, [], end, False, f"line {line}: {_what(tail)}")
    keep: list[bytes] = []
    blank = bad = dropped = repeats = 0
    for number, raw in enumerate(data[:end].splitlines(keepends=True), 1):
        if not raw.strip():
            blank += 1
            continue
        if _damage(raw):
            bad += 1
            continue
        row = _parse(raw)
        if row is None:
            return Scan(resume, [], end, False, f"line {number}: {_what(raw)}")
        key, kind = str(row["id"]), _kind(row["error"])
        if key in resume.done:
            repeats += 1
            continue
        if kind is not None and retry_failed:
            dropped += 1
            continue
        resume.done.add(key)
        if kind is not None:
            resume.failed[key] = kind
        keep.append(raw)
    if tail:
        resume.notes.append(f"dropped a half-written last line ({len(tail)} bytes)")
    if bad:
        resume.notes.append(f"removed {bad} unreadable line(s); their items run again")
    if blank:
        resume.notes.append(f"removed {blank} blank line(s)")
    if repeats:
        resume.notes.append(f"removed {repeats} repeated id line(s) (the first was kept)")
    if dropped:
        resume.notes.append(f"removed {dropped} failed item(s) to run them again (--retry-failed)")
    return Scan(resume, keep, end, bool(blank or bad or repeats or dropped))


def _parse(raw: bytes) -> dict[str, Any] | None:
    """The row of a complete line, or ``None`` when it is not offload's."""
    try:
        row = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return row if own_row(row) else None


def _kind(error: dict[str, Any] | None) -> str | None:
    return None if error is None else str(error.get("kind", "error"))


def _file_kind(mode: int) -> str:
    """A non-regular file, in words."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


class OutputLog:
    """The append-only output of one batch run (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, retry_failed: bool = False) -> None:
        self.stream = os.fspath(path) == STDOUT
        self.path = Path(path) if self.stream else Path(path).expanduser()
        self.retry_failed = retry_failed
        self._fd: int | None = None
        self._end = 0
        self._dirty = False
        self._syncer: asyncio.Task[None] | None = None
        self.written = 0

    @property
    def name(self) -> str:
        """Where the lines go, for messages."""
        return "stdout" if self.stream else str(self.path)

    # --- opening ------------------------------------------------------------------------------

    def open(self) -> Resume:
        """Check the file is offload's, lock it, scan it, repair it if needed, get ready to append."""
        if self.stream:
            self._fd = 1
            return Resume()
        self._check_kind()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise InputError(f"cannot open the output {self.path}: {exc.strerror or exc}") from exc
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):  # swapped for something else since the check
                raise self._not_regular(mode)
            self._lock(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        try:
            return self._resume(fd)
        except BaseException:
            self.close()
            raise

    def _check_kind(self) -> None:
        try:
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            return
        except OSError as exc:
            raise InputError(f"cannot open the output {self.path}: {exc.strerror or exc}") from exc
        if not stat.S_ISREG(mode):
            raise self._not_regular(mode)

    def _not_regular(self, mode: int) -> InputError:
        return InputError(
            f"the output {self.path} is {_file_kind(mode)}, not a regular file",
            remedy="give a file path with -o, or -o - to stream the results to stdout (no resume)",
        )

    def _lock(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(
                f"another offload batch is writing {self.path}",
                remedy="wait for it to finish, or choose another -o file",
            ) from None

    def _resume(self, fd: int) -> Resume:
        with os.fdopen(os.dup(fd), "rb") as handle:
            handle.seek(0)
            data = handle.read()
        found = scan(data, retry_failed=self.retry_failed)
        if found.foreign is not None:
            raise InputError(
                f"the output {self.path} holds something other than offload results ({found.foreign})",
                remedy="offload appends only to a new file or to its own output; choose another -o "
                f"file, or move {self.path.name} aside",
            )
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):  # a rewrite cut short by a kill
            with contextlib.suppress(OSError):
                stale.unlink()
        self._end = found.end
        if found.end < len(data):
            os.ftruncate(fd, found.end)
        if found.rewrite:
            self._rewrite(found.keep)
        return found.resume

    def _rewrite(self, keep: list[bytes]) -> None:
        """Atomically replace the file with ``keep`` (the lock moves to the new file first)."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        data = b"".join(keep)
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise self._failed("repair", exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _write_all(fd, data)
            os.fsync(fd)
            os.replace(tmp, self.path)
        except BaseException as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            if isinstance(exc, OSError):
                raise self._failed("repair", exc) from exc
            raise
        _sync_dir(self.path.parent)
        old, self._fd = self._fd, fd
        self._end = len(data)
        if old is not None:
            os.close(old)

    def _failed(self, doing: str, exc: OSError) -> OutputFailed:
        where = "stdout" if self.stream else f"the output {self.path}"
        return OutputFailed(
            f"cannot {doing} {where}: {exc.strerror or exc}",
            remedy=None if self.stream else "make room (or fix the disk), then rerun the command to resume",
        )

    # --- appending ----------------------------------------------------------------------------

    def append(self, row: dict[str, Any]) -> None:
        """Commit one finished item (one ``write()`` of one whole line).

        ``OutputFailed`` when the write fails; the file is cut back to its last whole line.
        """
        fd = self._fd
        if fd is None:
            raise RuntimeError("OutputLog.append before open()")
        line = encode(row)
        try:
            _write_all(fd, line)
        except OSError as exc:
            if not self.stream:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, self._end)
            raise self._failed("write", exc) from exc
        self._end += len(line)
        self.written += 1
        self._dirty = True
        if self._syncer is None and not self.stream:
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
        if fd is None or self.stream:
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
