"""Batch input: JSONL, CSV/TSV, a directory of text files, or an in-memory iterable, read into ``Item``s.

Owns the item identity rules and the reporting of bad input:

* JSONL — one JSON object (or a bare JSON string) per line; blank lines are skipped. The id is
  ``--id-field`` when given (then required on every line); otherwise the ``id`` field when the
  first object has one; otherwise the line number. The text is ``--text-field`` (``text``).
* CSV/TSV — a header row, then one item per record; the same id/text rules, with the data row
  number (1-based) as the default id. Every column is a template variable.
* a directory — every non-hidden regular file below it (sorted), id = the relative POSIX path.
* in memory — strings (id = position, 1-based) or mappings (as JSONL objects).

A line that cannot be read becomes an ``InputProblem`` with its line number and the rest is
read on; a repeated id is a problem too (the first occurrence wins), so every id is unique.
Ids are strings or integers; ``Item.key`` (``str(id)``) is what output and resume compare.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from offload.errors import InputError

Format = Literal["jsonl", "csv", "tsv", "dir"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "tsv", "dir")
ItemId = str | int


@dataclass(frozen=True)
class Item:
    """One unit of batch work."""

    id: ItemId
    text: str | None
    fields: Mapping[str, Any] = field(default_factory=dict)
    line: int = 0
    """Where it came from (line of JSONL, last line of a CSV record; 0 when not from a file)."""

    @property
    def key(self) -> str:
        """The id as output and resume compare it."""
        return str(self.id)

    def variables(self) -> dict[str, str]:
        """Template variables: every field as text (non-strings as JSON), plus ``id`` and ``text``."""
        out = {
            k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in self.fields.items()
        }
        out.setdefault("id", str(self.id))
        if self.text is not None:
            out["text"] = self.text
        return out


@dataclass(frozen=True)
class InputProblem:
    """A line of input that is not an item."""

    line: int
    message: str
    where: str = "line"

    def __str__(self) -> str:
        return f"{self.where} {self.line}: {self.message}" if self.line else self.message


@dataclass
class InputSet:
    """Everything read from one input."""

    items: list[Item] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)
    source: str = ""


def detect_format(path: Path) -> Format:
    """``dir`` for a directory, ``csv``/``tsv`` by suffix, else ``jsonl``."""
    if path.is_dir():
        return "dir"
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    return "jsonl"


def read_input(
    source: str | os.PathLike[str] | Iterable[str | Mapping[str, Any]],
    *,
    fmt: Format | None = None,
    id_field: str | None = None,
    text_field: str = "text",
    need_text: bool = True,
    exclude: Iterable[str | os.PathLike[str]] = (),
) -> InputSet:
    """Read every item of ``source`` (a path, ``-`` for stdin JSONL, or an iterable).

    ``exclude`` names files a directory walk skips (the output file, when it lies inside).
    """
    reader = _Reader(id_field, text_field, need_text)
    if isinstance(source, str | os.PathLike):
        name = os.fspath(source)
        if name == "-":
            return reader.finish(_jsonl(reader, sys.stdin.buffer), "stdin")
        path = Path(name).expanduser()
        if not path.exists():
            raise InputError(f"no input at {path}", remedy="give a JSONL or CSV file, or a directory")
        kind = fmt or detect_format(path)
        if kind == "dir":
            if not path.is_dir():
                raise InputError(f"{path} is not a directory")
            skip = {Path(p).expanduser().resolve() for p in exclude}
            return reader.finish(_directory(reader, path, skip), str(path))
        if kind in ("csv", "tsv"):
            return reader.finish(_csv(reader, path, "\t" if kind == "tsv" else ","), str(path))
        try:
            with path.open("rb") as handle:
                return reader.finish(_jsonl(reader, handle), str(path))
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return reader.finish(_memory(reader, source), "items")


class _Reader:
    """Turns raw records into items, applying the id/text rules and catching repeats."""

    def __init__(self, id_field: str | None, text_field: str, need_text: bool) -> None:
        self.id_field = id_field
        self.explicit_id = id_field is not None
        self.decided = id_field is not None
        self.text_field = text_field
        self.need_text = need_text
        self.seen: dict[str, int] = {}
        self.out = InputSet()

    def finish(self, records: Iterator[None], source: str) -> InputSet:
        for _ in records:
            pass
        self.out.source = source
        return self.out

    def problem(self, line: int, message: str, where: str = "line") -> None:
        self.out.problems.append(InputProblem(line, message, where))

    def record(self, fields: Mapping[str, Any], line: int, number: int, where: str = "line") -> None:
        """Add one record; ``number`` is the default id (line or row number)."""
        if not self.decided:
            self.id_field = "id" if "id" in fields else None
            self.decided = True
        if self.id_field is None:
            item_id: ItemId = number
        else:
            raw = fields.get(self.id_field)
            if raw is None or isinstance(raw, bool) or not isinstance(raw, str | int) or raw == "":
                got = "missing" if raw is None else f"not a string or integer: {json.dumps(raw)[:40]}"
                hint = "" if self.explicit_id else " (the first item had one, so every item needs one)"
                self.problem(line, f"id field {self.id_field!r} {got}{hint}", where)
                return
            item_id = raw
        text = fields.get(self.text_field)
        if text is not None and not isinstance(text, str):
            text = json.dumps(text, ensure_ascii=False)
        if text is None and self.need_text:
            names = ", ".join(list(fields)[:8]) or "none"
            self.problem(
                line, f"no {self.text_field!r} field (fields: {names}); choose one with --text-field", where
            )
            return
        self.add(Item(item_id, text, fields, line), where)

    def add(self, item: Item, where: str = "line") -> None:
        first = self.seen.get(item.key)
        if first is not None:
            at = f" ({where} {first})" if first else ""
            self.problem(item.line, f"id {item.key!r} repeats an earlier item{at}; skipped", where)
            return
        self.seen[item.key] = item.line
        self.out.items.append(item)


def _jsonl(reader: _Reader, handle: Any) -> Iterator[None]:
    for number, raw in enumerate(handle, 1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
            reader.problem(number, f"not valid JSON ({reason})")
            yield
            continue
        if isinstance(value, str):
            if reader.id_field is not None and reader.explicit_id:
                reader.problem(number, f"a bare string has no id field {reader.id_field!r}")
            else:
                reader.add(Item(number, value, {}, number))
        elif isinstance(value, dict):
            reader.record(value, number, number)
        else:
            reader.problem(number, f"expected a JSON object or string, got {type(value).__name__}")
        yield


def _csv(reader: _Reader, path: Path, delimiter: str) -> Iterator[None]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        rows = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(rows, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot read the header row: {exc}") from exc
        if header is None:
            return
        names = [h.strip() for h in header]
        number = 0
        while True:
            try:
                row = next(rows, None)
            except (csv.Error, UnicodeDecodeError) as exc:
                number += 1
                reader.problem(rows.line_num, f"unreadable CSV record: {exc}")
                yield
                continue
            if row is None:
                return
            if not any(cell.strip() for cell in row):
                continue
            number += 1
            if len(row) != len(names):
                reader.problem(rows.line_num, f"{len(row)} fields where the header has {len(names)}")
            else:
                reader.record(dict(zip(names, row, strict=True)), rows.line_num, number)
            yield


def _directory(reader: _Reader, root: Path, skip: set[Path]) -> Iterator[None]:
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and p.resolve() not in skip
    )
    for index, path in enumerate(files, 1):
        rel = path.relative_to(root).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else (exc.strerror or str(exc))
            reader.out.problems.append(InputProblem(0, f"{rel}: {reason}", "file"))
            yield
            continue
        reader.add(Item(rel, text, {"path": rel, "name": path.name}, index), "file")
        yield


def _memory(reader: _Reader, values: Iterable[Any]) -> Iterator[None]:
    for number, value in enumerate(values, 1):
        if isinstance(value, str):
            reader.add(Item(number, value, {}, number), "item")
        elif isinstance(value, Mapping):
            reader.record(value, number, number, "item")
        else:
            reader.problem(number, f"expected a string or a mapping, got {type(value).__name__}", "item")
        yield


def check_paths(items: object, output: str | os.PathLike[str] | None) -> None:
    """The output must not be the input file itself (the same path, a symlink or a hard link)."""
    if output is None or not isinstance(items, str | os.PathLike):
        return
    if "-" in (os.fspath(items), os.fspath(output)):
        return
    source, target = Path(items).expanduser(), Path(output).expanduser()
    try:
        same = source.is_file() and os.path.samefile(source, target)
    except OSError:  # the output does not exist yet
        return
    if same:
        raise InputError(f"the output {target} is the input file", remedy="write the results to another file")
