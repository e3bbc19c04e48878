"""Reading the files a tool call names, confined to one root directory.

Owns the rules every MCP tool applies to ``paths``:

* each entry is a file, a directory (every non-hidden file below it, sorted) or a glob
  (``docs/*.md``, ``src/**/*.py``), relative to the root; an absolute path is accepted only
  when it lies inside the root;
* nothing outside the root is read: every match is resolved (``..`` collapsed, symlinks
  followed) and refused when the real path leaves the root;
* a call reads at most ``max_bytes`` in total and ``max_files`` files;
* only UTF-8 text is read: a file with NUL bytes or invalid UTF-8 is refused by name.

Every refusal is an ``InputError`` naming the entry and what to do, never a partial read.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from offload.errors import InputError

DEFAULT_MAX_BYTES = 2_000_000
DEFAULT_MAX_FILES = 500
SNIFF_BYTES = 8192


@dataclass(frozen=True, slots=True)
class Source:
    """One file's text and its path relative to the root (POSIX form)."""

    path: str
    text: str


class Root:
    """A directory tool calls may read below, with per-call limits."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_files: int = DEFAULT_MAX_FILES,
    ) -> None:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise InputError(
                f"the root {path} is not a directory", remedy="pass an existing directory as --root"
            )
        self.path = path.resolve()
        self.max_bytes = max_bytes
        self.max_files = max_files

    def read(self, entries: Sequence[str]) -> list[Source]:
        """The text of every file the entries name, in order, each file once."""
        files: list[Path] = []
        seen: set[Path] = set()
        for entry in entries:
            for path in self.files(entry):
                if path not in seen:
                    seen.add(path)
                    files.append(path)
                if len(files) > self.max_files:
                    raise InputError(
                        f"the paths name more than {self.max_files} files",
                        remedy="name fewer files, or use the batch tool for many files",
                    )
        total = sum(p.stat().st_size for p in files)
        if total > self.max_bytes:
            raise InputError(
                f"the paths name {total:,} bytes; one call reads at most {self.max_bytes:,}",
                remedy="name fewer or smaller files, use the batch tool, or start the server with a larger "
                "--max-bytes",
            )
        return [Source(self.relative(p), read_text(p, self.relative(p))) for p in files]

    def files(self, entry: str) -> list[Path]:
        """The confined real paths of the files ``entry`` names (``InputError`` if none or escaping)."""
        if not entry.strip():
            raise InputError("an entry of paths is empty", remedy="name a file, directory or glob")
        pattern = self._pattern(entry)
        if glob.has_magic(pattern):
            matches = sorted(Path(m) for m in glob.glob(pattern, root_dir=self.path, recursive=True))
            if not matches:
                raise InputError(f"{entry}: no file matches under {self.path}", remedy="check the pattern")
            out = [f for m in matches for f in self._expand(entry, self.path / m)]
        else:
            out = self._expand(entry, self.path / pattern)
        return out

    def locate(self, entry: str) -> Path:
        """The confined real path of one existing file or directory (no globs)."""
        if glob.has_magic(entry):
            raise InputError(f"{entry}: name one file or directory here, not a pattern")
        real = self._confined(entry, self.path / self._pattern(entry))
        if not real.exists():
            raise InputError(f"{entry}: no such file or directory under {self.path}")
        return real

    def relative(self, path: Path) -> str:
        """``path`` (inside the root) relative to the root, POSIX style."""
        return path.relative_to(self.path).as_posix()

    def _pattern(self, entry: str) -> str:
        """``entry`` relative to the root (an absolute entry must lie inside it)."""
        path = Path(entry).expanduser()
        if not path.is_absolute():
            return entry
        inside = Path(os.path.normpath(path)) if glob.has_magic(entry) else path.resolve()
        try:
            return inside.relative_to(self.path).as_posix()
        except ValueError:
            raise _outside(entry, self.path) from None

    def _expand(self, entry: str, path: Path) -> list[Path]:
        real = self._confined(entry, path)
        if not real.exists():
            raise InputError(f"{entry}: no such file or directory under {self.path}")
        if real.is_dir():
            return [self._confined(entry, f) for f in _walk(real)]
        if not real.is_file():
            raise InputError(f"{entry}: {self.relative(real)} is not a regular file")
        return [real]

    def _confined(self, entry: str, path: Path) -> Path:
        real = path.resolve()
        if not real.is_relative_to(self.path):
            raise _outside(entry, self.path)
        return real


def _outside(entry: str, root: Path) -> InputError:
    return InputError(
        f"{entry}: refused, it leads outside the root {root} (by '..', a symlink or an absolute path)",
        remedy="name files inside the root, or start the server with --root on a directory holding them",
    )


def _walk(directory: Path) -> Iterator[Path]:
    """Every non-hidden file below ``directory``, sorted, without entering symlinked directories."""
    for base, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if not name.startswith("."):
                yield Path(base) / name


def read_text(path: Path, shown: str) -> str:
    """The UTF-8 text of ``path``; ``InputError`` (naming ``shown``) for binary or unreadable files."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{shown}: cannot read it ({exc.strerror or exc})") from exc
    if b"\0" in data[:SNIFF_BYTES]:
        raise InputError(
            f"{shown}: refused, it is a binary file", remedy="offload tools read text files only"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{shown}: refused, it is not UTF-8 text (byte {exc.start})",
            remedy="convert it to UTF-8 text first; offload tools read text files only",
        ) from exc
